/* sys_ctx_save(), the one function of sys.h that has to be real code: it
 * must return twice, so it cannot be inlined. Hosted only (the restorer
 * resumes contexts, it never saves them). */
#include "mtcp/sys.h"

__asm__(".text\n"
	".globl sys_ctx_save\n"
	".hidden sys_ctx_save\n"
	".type sys_ctx_save, @function\n"
	"sys_ctx_save:\n\t"
	"mov %rbx, 0(%rdi)\n\t"
	"mov %rbp, 8(%rdi)\n\t"
	"mov %r12, 16(%rdi)\n\t"
	"mov %r13, 24(%rdi)\n\t"
	"mov %r14, 32(%rdi)\n\t"
	"mov %r15, 40(%rdi)\n\t"
	"lea 8(%rsp), %rdx\n\t"
	"mov %rdx, 48(%rdi)\n\t"
	"mov (%rsp), %rdx\n\t"
	"mov %rdx, 56(%rdi)\n\t"
	"xor %eax, %eax\n\t"
	"ret\n\t"
	".size sys_ctx_save, .-sys_ctx_save\n");
