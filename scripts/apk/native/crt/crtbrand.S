/*
 * The ELF note that tells Android which API level a library was built for
 * (bionic: libc/arch-common/bionic/crtbrand.S; NT_ANDROID_TYPE_IDENT = 1
 * in libc/private/bionic_asm_note.h). ANDROID_API is set by the build.
 */
#ifndef ANDROID_API
#error "build with -DANDROID_API=<level>"
#endif

  .section .note.android.ident,"a",%note
  .balign 4
  .type dotcore_abitag, %object
dotcore_abitag:
  .long 2f-1f        /* namesz */
  .long 3f-2f        /* descsz */
  .long 1            /* NT_ANDROID_TYPE_IDENT */
1:.ascii "Android\0"
2:.long ANDROID_API
3:
  .size dotcore_abitag, .-dotcore_abitag

  .section .note.GNU-stack,"",%progbits
