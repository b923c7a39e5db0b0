//! Android-only set-up, all of it in one place (as matrix-sdk-ffi's
//! `platform` module): logging to logcat and the JNI handles the platform
//! certificate verifier needs. Compiled only for `target_os = "android"`.
//!
//! Kotlin calls it once per process through `DotCore.init(context)`
//! (bindings/kotlin/DotCorePlatform.kt) before creating a `DotEngine`:
//!
//! * `android_logger` routes the core's `log` records to logcat under the
//!   tag "dotcore" (info and above; debug builds of the app may lower it
//!   with `adb shell setprop log.tag.dotcore DEBUG`).
//! * `rustls_platform_verifier::android::init_with_env` stores the JavaVM,
//!   the application Context and its class loader, which the verifier uses
//!   to ask Android's TrustManager about server certificates. Without it the
//!   engine still runs, but only pins and `extraCaPem` can authenticate
//!   servers (the core logs "platform certificate verifier unavailable").
//!
//! The verifier's Kotlin half (`org.rustls.platformverifier`) must be in the
//! APK; docs/kotlin-api.md says where the AAR comes from.
//!
//! Written against the `jni` 0.21 API that rustls-platform-verifier 0.6
//! uses. This module cannot be built on the development machine (no Android
//! target there); keep it this small.

use std::panic::{catch_unwind, AssertUnwindSafe};

// The `_Unwind_*` functions std's panic machinery calls: on Android they
// would come from the NDK's libunwind.a, which the SDK-free build
// (scripts/apk/native/) does not have. Nothing here calls the crate; naming
// it makes rustc link it.
extern crate unwinding as _;

use jni::objects::{JClass, JObject};
use jni::JNIEnv;

/// Logcat tag of every record the engine logs.
pub const LOG_TAG: &str = "dotcore";

fn init_logging() {
    android_logger::init_once(
        android_logger::Config::default()
            .with_max_level(log::LevelFilter::Info)
            .with_tag(LOG_TAG),
    );
}

fn init(env: &mut JNIEnv<'_>, context: JObject<'_>) -> Result<(), String> {
    init_logging();
    rustls_platform_verifier::android::init_with_env(env, context)
        .map_err(|e| format!("rustls-platform-verifier: {e}"))?;
    log::info!(
        "dotcore initialised (version {})",
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}

/// `DotCore.nativeInit(context: Context)`, a `@JvmStatic external fun` of
/// the Kotlin object `app.dotcore.ffi.DotCore`. Idempotent. Failures (and
/// panics, which must not unwind into the JVM) become an
/// `IllegalStateException` in Kotlin.
// SAFETY (of `no_mangle`): the symbol name is the JNI mangling of
// `app.dotcore.ffi.DotCore.nativeInit`, unique in this library, and the
// signature is exactly what the JVM calls it with: (JNIEnv*, jclass,
// jobject) with the "system" calling convention. The JVM guarantees the env
// pointer is valid for this thread for the duration of the call, which is
// what `JNIEnv<'local>` encodes; no raw pointer is dereferenced here.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "system" fn Java_app_dotcore_ffi_DotCore_nativeInit<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    context: JObject<'local>,
) {
    let outcome = catch_unwind(AssertUnwindSafe(|| init(&mut env, context)));
    let message = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(_) => "panic during initialisation".to_string(),
    };
    log::error!("DotCore.init failed: {message}");
    // A pending Java exception (from a failed JNI call) is replaced by ours.
    let _ = env.exception_clear();
    let _ = env.throw_new("java/lang/IllegalStateException", message);
}
