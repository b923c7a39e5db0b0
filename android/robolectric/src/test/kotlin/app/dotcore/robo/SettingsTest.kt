package app.dotcore.robo

import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.EditText
import android.widget.RadioButton
import android.widget.TextView
import app.dotcore.DotVpnService
import app.dotcore.SettingsActivity
import app.dotcore.SettingsRepository
import app.dotcore.ffi.Mode
import app.dotcore.logic.CustomServerInput
import app.dotcore.logic.EngineConfigs
import app.dotcore.logic.ServerChoice
import app.dotcore.logic.Settings
import app.dotcore.logic.SettingsField
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.ClassRule
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.android.controller.ActivityController

@RunWith(RobolectricTestRunner::class)
class SettingsTest {
    private var running: RunningService? = null

    @Before fun setUp() {
        freshApp(settings = Settings())
    }

    @After fun tearDown() {
        endTest(running)
    }

    private class Screen(val controller: ActivityController<SettingsActivity>) {
        val activity get() = controller.get()
        val root: View get() = activity.window.decorView
        fun input(hintStart: String) = root.all(EditText::class.java).first { it.hint.toString().startsWith(hintStart) }
        fun radio(textStart: String) = root.all(RadioButton::class.java).first { it.text.startsWith(textStart) }
        fun save() = root.all(Button::class.java).first { it.text == "Save" }.performClick()

        /** The error line the form puts right below [input]. */
        fun errorBelow(input: View): TextView {
            val parent = input.parent as ViewGroup
            return parent.getChildAt(parent.indexOfChild(input) + 1) as TextView
        }
    }

    private fun open() = Screen(Robolectric.buildActivity(SettingsActivity::class.java).setup())

    private fun startService(): RunningService =
        RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also {
            running = it
            it.awaitRunning()
        }

    @Test
    fun `a custom server with a bad address shows the core's error under that field and is not saved`() {
        val before = SettingsRepository(app).load()
        val s = open()
        s.radio("Custom server").performClick()
        s.input("Host name").setText("dns.example.net")
        s.input("Addresses").setText("300.1.2.3")
        s.save()
        val expected = EngineConfigs.validate(
            Settings(server = ServerChoice.Custom, custom = CustomServerInput("dns.example.net", "300.1.2.3")),
        )
        assertEquals(SettingsField.CUSTOM_ADDRESSES, expected?.field)
        val line = s.errorBelow(s.input("Addresses"))
        assertEquals(View.VISIBLE, line.visibility)
        assertEquals(expected!!.message, line.text.toString())
        assertEquals("the host name has no error", View.GONE, s.errorBelow(s.input("Host name")).visibility)
        assertEquals("not saved", before, SettingsRepository(app).load())
        assertFalse("the screen stays open", s.activity.isFinishing)
    }

    @Test
    fun `a valid custom server is saved and applied to the running service without a new tunnel`() {
        startService()
        val tunnels = status.tunnelGeneration
        val engines = status.engineGeneration
        val s = open()
        s.radio("Custom server").performClick()
        s.input("Host name").setText(unbound.dotName)
        s.input("Addresses").setText(unbound.dot)
        s.input("SPKI pins").setText(unbound.leafPin)
        s.save()
        assertTrue(s.activity.isFinishing)
        val saved = SettingsRepository(app).load()
        assertEquals(ServerChoice.Custom, saved.server)
        assertEquals(unbound.dot, saved.custom.addresses)

        val apply = shadowOf(app).nextStartedService
        assertEquals(DotVpnService.ACTION_APPLY, apply.action)
        running!!.command(apply)
        awaitUntil("new engine on the custom server") {
            status.engineGeneration > engines && status.serverLabel == unbound.dotName && status.service.isOn
        }
        assertEquals("the VPN was not rebuilt", tunnels, status.tunnelGeneration)
        // The same tunnel now reaches the custom server, authenticated by its pin.
        val answer = queryThroughTunnel(unbound.aName, 0x3001)
        assertEquals(unbound.aV4, answer?.let { Packets.lastA(it) })
        awaitUntil("custom server validated with its pin") { status.server.validated && status.server.authenticated }
    }

    @Test
    fun `switching to opportunistic is applied live`() {
        startService()
        assertEquals(Mode.STRICT, status.mode)
        val tunnels = status.tunnelGeneration
        val s = open()
        s.radio("Opportunistic").performClick()
        s.save()
        assertEquals(Mode.OPPORTUNISTIC, SettingsRepository(app).load().mode)
        running!!.command(shadowOf(app).nextStartedService)
        awaitUntil("opportunistic engine") { status.mode == Mode.OPPORTUNISTIC && status.service.isOn }
        assertEquals(tunnels, status.tunnelGeneration)
    }

    @Test
    fun `unsaved edits survive a rotation`() {
        val s = open()
        s.radio("Custom server").performClick()
        s.input("Host name").setText("typed.example.net")
        s.radio("Opportunistic").performClick()
        s.controller.recreate()
        val after = Screen(s.controller)
        assertTrue("the custom server is still chosen", after.radio("Custom server").isChecked)
        assertEquals(View.VISIBLE, after.input("Host name").let { (it.parent as View).visibility })
        assertEquals("typed.example.net", after.input("Host name").text.toString())
        assertTrue(after.radio("Opportunistic").isChecked)
        assertEquals("nothing saved by rotating", Settings(), SettingsRepository(app).load())
    }

    private val unbound get() = fixture.server

    companion object {
        @ClassRule @JvmField val fixture = UnboundPerClass()
    }
}
