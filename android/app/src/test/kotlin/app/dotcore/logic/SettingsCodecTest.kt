package app.dotcore.logic

import app.dotcore.ffi.Mode
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Test

class SettingsCodecTest {
    @Test
    fun everySettingSurvivesARoundTrip() {
        val s = Settings(
            server = ServerChoice.Custom,
            configId = "abc123",
            custom = CustomServerInput("dns.example.net", "192.0.2.1, [2001:db8::1]:8853", "853", "pin1 pin2"),
            mode = Mode.OPPORTUNISTIC,
            excludedApps = setOf("com.example.a", "com.example.b"),
            startOnBoot = true,
            queryLog = true,
        )
        assertEquals(s, SettingsCodec.decode(SettingsCodec.encode(s)))
        for (server in listOf(ServerChoice.Provider("quad9"), ServerChoice.NetworkResolvers, ServerChoice.Custom)) {
            assertEquals(server, SettingsCodec.decode(SettingsCodec.encode(Settings(server = server))).server)
        }
    }

    @Test
    fun anEmptyStoreGivesTheDefaults() {
        assertEquals(Settings(), SettingsCodec.decode(emptyMap<String, Any>()))
        assertEquals(ServerChoice.Provider(Settings.DEFAULT_PROVIDER_ID), Settings().server)
        assertEquals(Mode.STRICT, Settings().mode)
    }

    @Test
    fun malformedValuesFallBackToDefaultsInsteadOfFailing() {
        val map = mapOf(
            "server" to "provider:",
            "mode" to "SOMETIMES",
            "start_on_boot" to "yes",
            "excluded_apps" to setOf("com.ok", 42),
            "custom_port" to 853,
        )
        val s = SettingsCodec.decode(map)
        assertEquals(Settings().server, s.server)
        assertEquals(Mode.STRICT, s.mode)
        assertEquals(false, s.startOnBoot)
        assertEquals(setOf("com.ok"), s.excludedApps)
        assertEquals("", s.custom.port)
    }

    @Test
    fun serverTextIsStable() {
        // Stored on devices: changing these strings loses the user's choice.
        assertEquals("provider:nextdns", SettingsCodec.serverToText(ServerChoice.Provider("nextdns")))
        assertEquals("custom", SettingsCodec.serverToText(ServerChoice.Custom))
        assertEquals("network", SettingsCodec.serverToText(ServerChoice.NetworkResolvers))
        assertNull(SettingsCodec.serverFromText("bogus"))
    }
}
