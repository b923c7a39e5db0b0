/*
 * Calls libdotcore_ffi's UniFFI C ABI directly, as the generated Kotlin
 * (JNA) code does, and prints what comes back, one fact per line:
 *
 *   uniffi_driver LIB COMMAND...
 *     contract              ffi_dotcore_ffi_uniffi_contract_version()
 *     checksum:NAME         uniffi_dotcore_ffi_checksum_NAME()
 *     providers             providers(), one line per Provider record
 *     validate:ID           validate_config() of a Strict config using
 *                           provider ID: "ok" or the DotError
 *     validate-truncated    validate_config() of a cut-off record: UniFFI
 *                           reports that it cannot read the argument
 *     panic                 rustbuffer_from_bytes() of a negative length:
 *                           a Rust panic (an `expect` in uniffi_core) that
 *                           UniFFI's catch_unwind must catch, which needs a
 *                           working unwinder (_Unwind_RaiseException,
 *                           personality, landing pads)
 *
 * ABI (from the generated Kotlin, uniffi 0.32): RustBuffer {u64 capacity,
 * u64 len, u8 *data}, ForeignBytes {i32 len, u8 *data}, RustCallStatus
 * {i8 code, RustBuffer error_buf}; code 0 success, 1 error (error_buf: the
 * serialized error enum), 2 unexpected error, e.g. a caught panic
 * (error_buf: the message, bare UTF-8). Serialized values are
 * big-endian: i32 lengths and enum variant numbers (from 1), i8 for bool
 * and Option tags, strings as i32 length + UTF-8.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint64_t capacity; uint64_t len; uint8_t *data; } RustBuffer;
typedef struct { int32_t len; const uint8_t *data; } ForeignBytes;
typedef struct { int8_t code; RustBuffer error_buf; } RustCallStatus;

static void *lib;

static void fail(const char *what) {
    fprintf(stderr, "uniffi_driver: %s\n", what);
    exit(1);
}

static void *sym(const char *name) {
    void *p = dlsym(lib, name);
    if (p == NULL) {
        fprintf(stderr, "uniffi_driver: symbol %s not found: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

/* --- reading serialized values ---------------------------------------- */
typedef struct { const uint8_t *p; uint64_t left; } Reader;

static const uint8_t *take(Reader *r, uint64_t n) {
    if (r->left < n) fail("buffer ends inside a value");
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static int32_t read_i32(Reader *r) {
    const uint8_t *b = take(r, 4);
    return (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
}

static int8_t read_i8(Reader *r) { return (int8_t)*take(r, 1); }

/* Prints a string with tabs/newlines/backslashes escaped (one line per fact). */
static void print_string(Reader *r) {
    int32_t n = read_i32(r);
    if (n < 0) fail("negative string length");
    const uint8_t *s = take(r, (uint64_t)n);
    for (int32_t i = 0; i < n; i++) {
        if (s[i] == '\t') fputs("\\t", stdout);
        else if (s[i] == '\n') fputs("\\n", stdout);
        else if (s[i] == '\\') fputs("\\\\", stdout);
        else putchar(s[i]);
    }
}

/* --- writing ------------------------------------------------------------ */
typedef struct { uint8_t b[4096]; size_t n; } Writer;

static void put(Writer *w, const void *p, size_t n) {
    if (w->n + n > sizeof(w->b)) fail("record too large");
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void put_i32(Writer *w, int32_t v) {
    uint8_t b[4] = {(uint8_t)((uint32_t)v >> 24), (uint8_t)((uint32_t)v >> 16),
                    (uint8_t)((uint32_t)v >> 8), (uint8_t)v};
    put(w, b, 4);
}
static void put_i8(Writer *w, int8_t v) { put(w, &v, 1); }
static void put_string(Writer *w, const char *s) {
    put_i32(w, (int32_t)strlen(s));
    put(w, s, strlen(s));
}

/* --- calls ---------------------------------------------------------------- */
static RustBuffer to_rust(const Writer *w) {
    RustBuffer (*from_bytes)(ForeignBytes, RustCallStatus *) = sym("ffi_dotcore_ffi_rustbuffer_from_bytes");
    RustCallStatus st = {0};
    ForeignBytes fb = {(int32_t)w->n, w->b};
    RustBuffer buf = from_bytes(fb, &st);
    if (st.code != 0) fail("rustbuffer_from_bytes failed");
    return buf;
}

static void free_rust(RustBuffer buf) {
    void (*rb_free)(RustBuffer, RustCallStatus *) = sym("ffi_dotcore_ffi_rustbuffer_free");
    RustCallStatus st = {0};
    rb_free(buf, &st);
    if (st.code != 0) fail("rustbuffer_free failed");
}

static void print_status(RustCallStatus *st) {
    Reader r = {st->error_buf.data, st->error_buf.len};
    if (st->code == 0) {
        fputs("ok", stdout);
    } else if (st->code == 1) {
        int32_t variant = read_i32(&r);
        if (variant == 1) {
            fputs("invalid_config field=", stdout);
            print_string(&r);
            fputs(" reason=", stdout);
            print_string(&r);
        } else {
            printf("dot_error variant %d", variant);
        }
    } else if (st->code == 2) {
        /* A bare UTF-8 message, no length prefix (Kotlin: FfiConverterString.lift).
         * Printed up to an empty line: what follows is a backtrace when
         * RUST_BACKTRACE is set, which differs between builds. */
        fputs("unexpected_error: ", stdout);
        for (uint64_t i = 0; i < st->error_buf.len; i++) {
            uint8_t c = st->error_buf.data[i];
            if (c == '\n' && i + 1 < st->error_buf.len && st->error_buf.data[i + 1] == '\n') break;
            if (c == '\n') fputs("\\n", stdout);
            else putchar(c);
        }
    } else {
        printf("unknown call status %d", st->code);
    }
    if (st->error_buf.data != NULL) free_rust(st->error_buf);
}

static void engine_config(Writer *w, const char *provider) {
    put_i32(w, 1); /* Upstream::Provider */
    put_string(w, provider);
    put_i8(w, 0);  /* config_id: None */
    put_i32(w, 1); /* Mode::Strict */
    put_i8(w, 0);  /* extra_ca_pem: None */
    put_i8(w, 0);  /* cache: None */
    put_i8(w, 0);  /* idle: None */
    put_i8(w, 0);  /* query_log: false */
    put_i32(w, 0); /* network_resolvers: [] */
}

static void validate(const Writer *w, const char *label) {
    void (*fn)(RustBuffer, RustCallStatus *) = sym("uniffi_dotcore_ffi_fn_func_validate_config");
    RustCallStatus st = {0};
    fn(to_rust(w), &st);
    printf("validate %s: ", label);
    print_status(&st);
    putchar('\n');
}

static void providers(void) {
    RustBuffer (*fn)(RustCallStatus *) = sym("uniffi_dotcore_ffi_fn_func_providers");
    RustCallStatus st = {0};
    RustBuffer buf = fn(&st);
    if (st.code != 0) {
        fputs("providers: ", stdout);
        print_status(&st);
        putchar('\n');
        return;
    }
    Reader r = {buf.data, buf.len};
    int32_t count = read_i32(&r);
    printf("providers: %d\n", count);
    for (int32_t i = 0; i < count; i++) {
        fputs("provider\t", stdout);
        print_string(&r); /* id */
        putchar('\t');
        print_string(&r); /* display_name */
        putchar('\t');
        print_string(&r); /* auth_name */
        putchar('\t');
        int32_t n = read_i32(&r);
        for (int32_t j = 0; j < n; j++) {
            if (j) putchar(',');
            print_string(&r);
        }
        printf("\t%d", read_i32(&r));   /* port */
        printf("\t%d\t", read_i8(&r));  /* needs_config_id */
        print_string(&r);               /* description */
        putchar('\n');
    }
    if (r.left != 0) fail("bytes left over after the provider list");
    free_rust(buf);
}

int main(int argc, char **argv) {
    if (argc < 3) fail("usage: uniffi_driver LIB COMMAND...");
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "uniffi_driver: dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        const char *c = argv[i];
        if (strcmp(c, "contract") == 0) {
            uint32_t (*fn)(void) = sym("ffi_dotcore_ffi_uniffi_contract_version");
            printf("contract_version %u\n", fn());
        } else if (strncmp(c, "checksum:", 9) == 0) {
            char name[256];
            snprintf(name, sizeof(name), "uniffi_dotcore_ffi_checksum_%s", c + 9);
            uint16_t (*fn)(void) = sym(name);
            printf("checksum %s %u\n", c + 9, fn());
        } else if (strcmp(c, "providers") == 0) {
            providers();
        } else if (strncmp(c, "validate:", 9) == 0) {
            Writer w = {.n = 0};
            engine_config(&w, c + 9);
            validate(&w, c + 9);
        } else if (strcmp(c, "validate-truncated") == 0) {
            Writer w = {.n = 0};
            engine_config(&w, "cloudflare");
            w.n -= 6; /* cut inside the record */
            validate(&w, "truncated");
        } else if (strcmp(c, "panic") == 0) {
            RustBuffer (*from_bytes)(ForeignBytes, RustCallStatus *) =
                sym("ffi_dotcore_ffi_rustbuffer_from_bytes");
            RustCallStatus st = {0};
            static const uint8_t byte = 0;
            ForeignBytes bad = {-1, &byte};
            RustBuffer buf = from_bytes(bad, &st);
            fputs("panic: ", stdout);
            print_status(&st);
            putchar('\n');
            if (st.code == 0) free_rust(buf);
        } else {
            fprintf(stderr, "uniffi_driver: unknown command %s\n", c);
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
