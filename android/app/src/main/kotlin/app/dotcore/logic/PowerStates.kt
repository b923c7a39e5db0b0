package app.dotcore.logic

import app.dotcore.ffi.PowerState

/**
 * What the device reports about its power situation (PowerManager's
 * `isInteractive`, `isDeviceIdleMode`, `isPowerSaveMode`).
 */
data class PowerInputs(
    val interactive: Boolean,
    val deviceIdle: Boolean,
    val powerSave: Boolean,
)

/**
 * The engine's power state for [inputs], as docs/connection-policy.md
 * defines it: doze or battery saver is DEEP_IDLE (connections close as soon
 * as queries drain), else screen on is INTERACTIVE and screen off IDLE.
 */
fun powerStateFor(inputs: PowerInputs): PowerState = when {
    inputs.deviceIdle || inputs.powerSave -> PowerState.DEEP_IDLE
    inputs.interactive -> PowerState.INTERACTIVE
    else -> PowerState.IDLE
}

/**
 * Turns the stream of power broadcasts (screen on/off, doze, battery saver;
 * several per transition, some repeated) into the engine's power-state
 * changes: [update] returns the new state only when it differs from the
 * last one returned.
 */
class PowerStateTracker {
    @Volatile
    var current: PowerState? = null
        private set

    @Synchronized
    fun update(inputs: PowerInputs): PowerState? {
        val next = powerStateFor(inputs)
        if (next == current) return null
        current = next
        return next
    }
}
