/*
 * Emulated thread-local storage for libdotcore_ffi.so.
 *
 * Rust's Android targets compile thread_local! with LLVM's emulated TLS
 * ("tls-model": "emulated" in `rustc --print target-spec-json`), because
 * bionic has ELF TLS only from API 29. Every TLS access becomes a call to
 * __emutls_get_address(&__emutls_v.<var>), which the NDK takes from
 * libclang_rt.builtins (compiler-rt lib/builtins/emutls.c). Debian has no
 * Android build of compiler-rt, so this file provides it.
 *
 * The ABI (the layout LLVM emits for __emutls_v.<var>, shared with GCC's
 * libgcc/emutls.c) is: size and alignment of the variable, a word the
 * runtime owns (here: the variable's 1-based index, 0 until first use), and
 * a pointer to its initial value (NULL: zero-initialised).
 *
 * Each thread keeps an array of its variables' addresses under one
 * pthread key; the key's destructor frees them at thread exit. Bionic runs
 * __cxa_thread_atexit destructors (Rust's TLS destructors) before pthread
 * key destructors, so Rust's destructors still see their variables.
 *
 * No bionic headers exist on the build machine: the few declarations are
 * written out with bionic's types (pthread_key_t and pthread_once_t are int
 * in bionic's <pthread.h>).
 */
#include <stddef.h>
#include <stdint.h>

typedef int dotcore_pthread_key_t;
typedef int dotcore_pthread_once_t;

extern int pthread_once(dotcore_pthread_once_t *once, void (*fn)(void));
extern int pthread_key_create(dotcore_pthread_key_t *key, void (*dtor)(void *));
extern int pthread_key_delete(dotcore_pthread_key_t key);
extern void *pthread_getspecific(dotcore_pthread_key_t key);
extern int pthread_setspecific(dotcore_pthread_key_t key, const void *value);
extern int posix_memalign(void **out, size_t align, size_t size);
extern void *realloc(void *p, size_t size);
extern void free(void *p);
extern void abort(void) __attribute__((noreturn));
extern void *memcpy(void *dst, const void *src, size_t n);
extern void *memset(void *dst, int c, size_t n);

struct emutls_control {
    size_t size;
    size_t align;
    uintptr_t index;
    const void *initial;
};

struct emutls_array {
    size_t count;
    void *slot[];
};

static dotcore_pthread_key_t emutls_key;
static dotcore_pthread_once_t emutls_once; /* PTHREAD_ONCE_INIT is 0 in bionic */
static int emutls_key_live;
static uintptr_t emutls_last_index;

static void emutls_free_thread(void *p) {
    struct emutls_array *a = p;
    for (size_t i = 0; i < a->count; i++) {
        free(a->slot[i]);
    }
    free(a);
}

static void emutls_create_key(void) {
    if (pthread_key_create(&emutls_key, emutls_free_thread) != 0) {
        abort();
    }
    __atomic_store_n(&emutls_key_live, 1, __ATOMIC_RELEASE);
}

/* A variable's index is fixed at its first use by any thread. Two threads
 * racing may both draw a number; the loser's number is simply never used. */
static uintptr_t emutls_index(struct emutls_control *c) {
    uintptr_t index = __atomic_load_n(&c->index, __ATOMIC_ACQUIRE);
    if (index != 0) {
        return index;
    }
    uintptr_t fresh = __atomic_add_fetch(&emutls_last_index, 1, __ATOMIC_RELAXED);
    uintptr_t expected = 0;
    if (__atomic_compare_exchange_n(&c->index, &expected, fresh, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        return fresh;
    }
    return expected;
}

static void *emutls_new_object(const struct emutls_control *c) {
    size_t align = c->align < sizeof(void *) ? sizeof(void *) : c->align;
    void *p = NULL;
    if (posix_memalign(&p, align, c->size ? c->size : 1) != 0) {
        abort();
    }
    if (c->initial != NULL) {
        memcpy(p, c->initial, c->size);
    } else {
        memset(p, 0, c->size);
    }
    return p;
}

__attribute__((visibility("hidden"))) void *__emutls_get_address(struct emutls_control *c) {
    uintptr_t index = emutls_index(c);
    pthread_once(&emutls_once, emutls_create_key);
    struct emutls_array *a = pthread_getspecific(emutls_key);
    if (a == NULL || a->count < index) {
        size_t old = a == NULL ? 0 : a->count;
        size_t count = old * 2 > index ? old * 2 : index + 16;
        a = realloc(a, sizeof(*a) + count * sizeof(void *));
        if (a == NULL) {
            abort();
        }
        memset(&a->slot[old], 0, (count - old) * sizeof(void *));
        a->count = count;
        if (pthread_setspecific(emutls_key, a) != 0) {
            abort();
        }
    }
    void **slot = &a->slot[index - 1];
    if (*slot == NULL) {
        *slot = emutls_new_object(c);
    }
    return *slot;
}

/* Called by crtbegin_so.c's last destructor when the library is unloaded:
 * the key's destructor points into this library's code. */
__attribute__((visibility("hidden"))) void __emutls_unregister_key(void) {
    if (__atomic_exchange_n(&emutls_key_live, 0, __ATOMIC_ACQ_REL)) {
        pthread_key_delete(emutls_key);
    }
}
