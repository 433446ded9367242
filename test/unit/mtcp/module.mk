# Unit tests of mtcp/: the image format (writer, reader, CRC-32C).
UNIT_TESTS += mtcp/image mtcp/crc32c
# The image test counts allocations made while the writer runs: our own calls
# through these wraps, zstd's and OpenSSL's through the interposed malloc.
unit_mtcp_image_WRAP := malloc calloc realloc free
# export-core: register mapping and whole cores read back with libelf.
UNIT_TESTS += mtcp/core
unit_mtcp_core_OBJS := build/mtcp/core.o
# Key files: formats, permissions, messages.
UNIT_TESTS += mtcp/key
# Virtual pids: translation, groups and sessions, pid collisions.
UNIT_TESTS += mtcp/vpid
unit_mtcp_vpid_OBJS := build/mtcp/vpid.o
