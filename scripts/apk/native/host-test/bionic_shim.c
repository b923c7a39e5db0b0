/*
 * The few bionic functions glibc lacks or defines differently, so that the
 * x86_64 Android build of libdotcore_ffi.so can run on a glibc host
 * (test-on-host.sh). Built for the host; the driver links it before libc so
 * its definitions win for the Android library.
 *
 * Differences handled (bionic sources: libc/include/bits/sysconf.h,
 * libc/include/string.h, libc/bionic/errno.cpp, liblog's android/log.h):
 *  - __errno(): bionic's name for glibc's __errno_location().
 *  - sysconf(): bionic numbers its _SC_* names differently from glibc.
 *  - strerror_r(): bionic's is the POSIX one (returns int); glibc's
 *    `strerror_r` symbol is the GNU one (returns char *), the POSIX one is
 *    __xpg_strerror_r.
 *  - __android_log_write/__android_log_buf_write (liblog): printed to
 *    stderr as "android-log <prio> <tag>: <text>".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int *__errno(void) { return __errno_location(); }

/* bionic _SC_* value -> glibc _SC_* value. */
static const struct { int bionic; int glibc; } sysconf_names[] = {
    {0x0006, _SC_CLK_TCK},          {0x000a, _SC_NGROUPS_MAX},
    {0x000b, _SC_OPEN_MAX},         {0x0027, _SC_PAGESIZE},
    {0x0028, _SC_PAGE_SIZE},        {0x0047, _SC_GETGR_R_SIZE_MAX},
    {0x0048, _SC_GETPW_R_SIZE_MAX}, {0x004c, _SC_THREAD_STACK_MIN},
    {0x0060, _SC_NPROCESSORS_CONF}, {0x0061, _SC_NPROCESSORS_ONLN},
    {0x0062, _SC_PHYS_PAGES},       {0x006f, _SC_HOST_NAME_MAX},
};

long sysconf(int name) {
    static long (*glibc_sysconf)(int);
    if (glibc_sysconf == NULL) {
        glibc_sysconf = (long (*)(int))dlsym(RTLD_NEXT, "sysconf");
        if (glibc_sysconf == NULL) {
            fprintf(stderr, "bionic_shim: glibc's sysconf not found: %s\n", dlerror());
            abort();
        }
    }
    for (size_t i = 0; i < sizeof(sysconf_names) / sizeof(sysconf_names[0]); i++) {
        if (sysconf_names[i].bionic == name) {
            return glibc_sysconf(sysconf_names[i].glibc);
        }
    }
    /* Loud, so that a new use shows up as a test failure, not as garbage. */
    fprintf(stderr, "bionic_shim: sysconf(0x%x) is not a bionic name this shim maps\n", name);
    errno = EINVAL;
    return -1;
}

extern int __xpg_strerror_r(int errnum, char *buf, size_t len);
int strerror_r(int errnum, char *buf, size_t len) { return __xpg_strerror_r(errnum, buf, len); }

static const char *log_priority(int prio) {
    static const char *const names[] = {"?", "default", "V", "D", "I", "W", "E", "F", "silent"};
    return prio >= 0 && prio < 9 ? names[prio] : "?";
}

int __android_log_write(int prio, const char *tag, const char *text) {
    return fprintf(stderr, "android-log %s %s: %s\n", log_priority(prio), tag ? tag : "", text ? text : "");
}

int __android_log_buf_write(int buf_id, int prio, const char *tag, const char *text) {
    (void)buf_id;
    return __android_log_write(prio, tag, text);
}
