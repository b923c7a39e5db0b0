package app.dotcore.logic

import app.dotcore.ffi.PowerState
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Test

class PowerStatesTest {
    @Test
    fun mappingFollowsTheConnectionPolicy() {
        // docs/connection-policy.md: screen on / screen off / doze or battery saver.
        val table = mapOf(
            PowerInputs(interactive = true, deviceIdle = false, powerSave = false) to PowerState.INTERACTIVE,
            PowerInputs(interactive = false, deviceIdle = false, powerSave = false) to PowerState.IDLE,
            PowerInputs(interactive = false, deviceIdle = true, powerSave = false) to PowerState.DEEP_IDLE,
            PowerInputs(interactive = false, deviceIdle = false, powerSave = true) to PowerState.DEEP_IDLE,
            PowerInputs(interactive = true, deviceIdle = false, powerSave = true) to PowerState.DEEP_IDLE,
            PowerInputs(interactive = true, deviceIdle = true, powerSave = true) to PowerState.DEEP_IDLE,
        )
        for ((inputs, expected) in table) assertEquals(expected, powerStateFor(inputs), "$inputs")
    }

    @Test
    fun trackerReportsOnlyChanges() {
        val t = PowerStateTracker()
        val on = PowerInputs(interactive = true, deviceIdle = false, powerSave = false)
        val off = on.copy(interactive = false)
        assertEquals(PowerState.INTERACTIVE, t.update(on))
        assertNull(t.update(on), "a repeated broadcast is not a change")
        assertEquals(PowerState.IDLE, t.update(off))
        assertNull(t.update(off))
        assertEquals(PowerState.DEEP_IDLE, t.update(off.copy(deviceIdle = true)))
        // Battery saver switching on while dozing changes nothing for the engine.
        assertNull(t.update(off.copy(deviceIdle = true, powerSave = true)))
        assertEquals(PowerState.INTERACTIVE, t.update(on))
        assertEquals(PowerState.INTERACTIVE, t.current)
    }
}
