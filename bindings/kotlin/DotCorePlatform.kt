// Android-only: the one place where the app sets up the native library.
// Belongs in the app module (it needs android.content.Context); it is not
// compiled by the JVM tests in tests/kotlin. The native side is
// bindings/src/platform.rs.
package app.dotcore.ffi

import android.content.Context

/**
 * Process-wide set-up of the dotcore library. Call [init] once, before the
 * first [DotEngine] is created (typically in `Application.onCreate` or at the
 * start of the VpnService):
 *
 * ```kotlin
 * class App : Application() {
 *     override fun onCreate() {
 *         super.onCreate()
 *         DotCore.init(this)
 *     }
 * }
 * ```
 *
 * It loads `libdotcore_ffi.so` (the same library the generated bindings
 * reach through JNA), sends the engine's logs to logcat under the tag
 * "dotcore", and gives the platform certificate verifier the application
 * Context, so servers are checked against Android's trust store (user CAs
 * and network security config included). Safe to call more than once.
 *
 * @throws IllegalStateException if the native initialisation failed (for
 *   example when the `org.rustls.platformverifier` classes were stripped by
 *   R8; see docs/kotlin-api.md for the keep rule).
 */
object DotCore {
    @Volatile
    private var initialised = false

    @Synchronized
    fun init(context: Context) {
        if (initialised) return
        System.loadLibrary("dotcore_ffi")
        nativeInit(context.applicationContext)
        initialised = true
    }

    @JvmStatic
    private external fun nativeInit(context: Context)
}
