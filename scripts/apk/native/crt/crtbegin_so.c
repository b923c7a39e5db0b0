/*
 * Start file of libdotcore_ffi.so (our stand-in for the NDK's crtbegin_so.o;
 * docs/android.md lists what bionic's libc/arch-common/bionic/crtbegin_so.c does).
 * Linked first, before every Rust object.
 */

extern void __cxa_finalize(void *dso);
extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);

/*
 * The identity of this library for __cxa_atexit/__cxa_finalize: any address
 * unique to the DSO works; bionic points it at itself. Hidden, so every
 * shared object has its own.
 */
__attribute__((visibility("hidden"))) void *const __dso_handle = (void *)&__dso_handle;

/* Handlers registered with this DSO's handle must run when it is unloaded
 * (dlclose), not at process exit when their code is gone. */
__attribute__((destructor)) static void dotcore_crt_on_unload(void) {
    __cxa_finalize((void *)&__dso_handle);
}

/* emutls.c defines the real one; weak so that the crt also links alone. */
__attribute__((weak, visibility("hidden"))) void __emutls_unregister_key(void) {}

/* Priority 0: after every other destructor, which may still use TLS. */
__attribute__((destructor(0))) static void dotcore_crt_on_unload_late(void) {
    __emutls_unregister_key();
}

static void dotcore_crt_call_noarg(void *fn) {
    if (fn != 0) {
        ((void (*)(void))fn)();
    }
}

/* atexit() inside a shared library means "when this library goes away":
 * bionic's libc has no atexit of its own for DSOs; the crt provides it. */
__attribute__((visibility("hidden"))) int atexit(void (*fn)(void)) {
    return __cxa_atexit(dotcore_crt_call_noarg, (void *)fn, (void *)&__dso_handle);
}
