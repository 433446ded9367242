/* The restorer blob (build/restorer.bin), embedded in cryo_restart. */
	.section .rodata
	.balign 64
	.globl restorer_blob
	.hidden restorer_blob
restorer_blob:
	.incbin "build/restorer.bin"
	.globl restorer_blob_end
	.hidden restorer_blob_end
restorer_blob_end:
	.section .note.GNU-stack,"",@progbits
