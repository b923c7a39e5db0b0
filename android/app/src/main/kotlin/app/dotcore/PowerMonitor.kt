package app.dotcore

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.os.Build
import android.os.PowerManager
import app.dotcore.ffi.PowerState
import app.dotcore.logic.PowerInputs
import app.dotcore.logic.PowerStateTracker

/**
 * Screen on/off, doze and battery saver, as the engine's power state
 * (mapping in [app.dotcore.logic.powerStateFor]). [onChange] runs on the
 * main thread, only when the state changes.
 */
class PowerMonitor(private val context: Context, private val onChange: (PowerState) -> Unit) {
    private val pm = context.getSystemService(PowerManager::class.java)
    private val tracker = PowerStateTracker()

    private val receiver = object : BroadcastReceiver() {
        override fun onReceive(context: Context, intent: Intent) {
            tracker.update(inputs())?.let(onChange)
        }
    }

    /** The current state (read now if [start] has not run). */
    val current: PowerState
        get() = tracker.current ?: app.dotcore.logic.powerStateFor(inputs())

    private fun inputs() = PowerInputs(
        interactive = pm.isInteractive,
        deviceIdle = pm.isDeviceIdleMode,
        powerSave = pm.isPowerSaveMode,
    )

    fun start() {
        tracker.update(inputs())
        val filter = IntentFilter().apply {
            // Screen broadcasts are only delivered to receivers registered at run time.
            addAction(Intent.ACTION_SCREEN_ON)
            addAction(Intent.ACTION_SCREEN_OFF)
            addAction(PowerManager.ACTION_DEVICE_IDLE_MODE_CHANGED)
            addAction(PowerManager.ACTION_POWER_SAVE_MODE_CHANGED)
        }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            // System broadcasts still reach a non-exported receiver.
            context.registerReceiver(receiver, filter, Context.RECEIVER_NOT_EXPORTED)
        } else {
            context.registerReceiver(receiver, filter)
        }
    }

    fun stop() {
        try {
            context.unregisterReceiver(receiver)
        } catch (e: IllegalArgumentException) {
            // not registered
        }
    }
}
