/*
 * End file of libdotcore_ffi.so, linked last (bionic:
 * libc/arch-common/bionic/crtend_so.S): a zero-length CIE terminating
 * .eh_frame, for unwinders that walk the section to its end instead of
 * using .eh_frame_hdr. Not on 32-bit ARM, which unwinds with .ARM.exidx.
 */
#if !defined(__arm__)
  .section .eh_frame,"a",%progbits
  .balign 4
  .type __FRAME_END__, %object
  .size __FRAME_END__, 4
__FRAME_END__:
  .zero 4
#endif

  .section .note.GNU-stack,"",%progbits
