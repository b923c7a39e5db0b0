package app.dotcore

import android.app.Application
import android.util.Log
import app.dotcore.ffi.DotCore

/**
 * The process: notification channels, and the engine's one-time native
 * set-up (logcat, and the JNI handles rustls-platform-verifier needs to ask
 * Android's TrustManager about server certificates).
 */
class DotApp : Application() {
    override fun onCreate() {
        super.onCreate()
        Notifications.createChannels(this)
        try {
            DotCore.init(this)
        } catch (e: IllegalStateException) {
            // The engine still runs; only pins and extra CAs can
            // authenticate servers then (the core logs it too).
            Log.e(TAG, "platform certificate verifier unavailable", e)
        } catch (e: LinkageError) {
            Log.e(TAG, "libdotcore_ffi.so could not be loaded", e)
        }
    }

    companion object {
        const val TAG = "dotcore"
    }
}
