# mtcp: the in-process engine (libcryo.so), the image format, logging and raw
# syscalls shared by every program, and the cryo_image tool.
common_SRCS += mtcp/log.c mtcp/sys.c mtcp/nolibc/fmt.c mtcp/nolibc/string.c \
               mtcp/crc32c.c mtcp/image.c mtcp/image_read.c mtcp/util.c \
               mtcp/maps_parse.c mtcp/key.c
libcryo_SRCS += mtcp/ckpt_thread.c mtcp/threads.c mtcp/maps.c mtcp/proc.c \
                mtcp/wrap_signal.c mtcp/wrap_thread.c mtcp/wrap_exec.c mtcp/wrap_fork.c mtcp/vpid.c mtcp/codec.c \
                mtcp/dirty.c mtcp/cow.c
image_tool_SRCS += mtcp/cryo_image.c mtcp/core.c restart/loader.c restart/plan.c restart/chain.c \
                   restart/blob.S
restorer_SRCS += mtcp/log.c mtcp/nolibc/fmt.c mtcp/nolibc/string.c
# libcryo-image.so: the codec libcryo loads at the first checkpoint (mtcp/codec.h).
codec_SRCS += mtcp/codec_export.c
