/* The one symbol libcryo-image.so exports: its table of entry points (see
 * mtcp/codec.h). Built only into that library. */
#include "mtcp/codec.h"
#include "mtcp/key.h"
#include "mtcp/log.h"

__attribute__((visibility("default"))) const struct codec_ops cryo_codec_ops = {
	.abi = CODEC_ABI,
	.writer_new = image_writer_new,
	.writer_free = image_writer_free,
	.writer_prepare = image_writer_prepare,
	.writer_set_key = image_writer_set_key,
	.writer_set_live = image_writer_set_live,
	.writer_begin = image_writer_begin,
	.writer_record = image_writer_record,
	.writer_pages = image_writer_pages,
	.writer_finish = image_writer_finish,
	.writer_bytes = image_writer_bytes,
	.writer_restarted = image_writer_restarted,
	.key_load = key_load,
	.log_setup = log_setup,
	.log_set_ident = log_set_ident,
	.writer_digest = image_writer_digest,
};
