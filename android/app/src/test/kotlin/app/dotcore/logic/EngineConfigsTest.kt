package app.dotcore.logic

import app.dotcore.ffi.CustomServer
import app.dotcore.ffi.Mode
import app.dotcore.ffi.Upstream
import app.dotcore.ffi.providers
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * Settings to engine configuration, and the real core's verdict on them
 * (`validateConfig` through JNA, libdotcore_ffi built for this machine):
 * every error lands on the input the user has to fix.
 */
class EngineConfigsTest {
    private fun custom(
        hostname: String = "dns.example.net",
        addresses: String = "192.0.2.1",
        port: String = "",
        pins: String = "",
        mode: Mode = Mode.STRICT,
    ) = Settings(server = ServerChoice.Custom, custom = CustomServerInput(hostname, addresses, port, pins), mode = mode)

    private fun errorOf(s: Settings): FieldError =
        EngineConfigs.validate(s) ?: throw AssertionError("expected $s to be rejected")

    // A valid pin: base64 of 32 bytes.
    private val pin = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

    @Test
    fun theDefaultProviderIsTheCoresDefault() {
        assertEquals(providers().first().id, Settings.DEFAULT_PROVIDER_ID)
        assertNull(EngineConfigs.validate(Settings()))
    }

    @Test
    fun everyBuiltInProviderValidates() {
        for (p in providers()) {
            val s = Settings(server = ServerChoice.Provider(p.id), configId = if (p.needsConfigId) "abc123" else "")
            assertNull(EngineConfigs.validate(s), p.id)
        }
    }

    @Test
    fun providerErrorsLandOnTheServerAndConfigIdInputs() {
        val unknown = errorOf(Settings(server = ServerChoice.Provider("no-such-provider")))
        assertEquals(SettingsField.SERVER, unknown.field)
        assertEquals("provider", unknown.coreField)

        val needsId = providers().first { it.needsConfigId }
        val missing = errorOf(Settings(server = ServerChoice.Provider(needsId.id)))
        assertEquals(SettingsField.CONFIG_ID, missing.field)
        val bad = errorOf(Settings(server = ServerChoice.Provider(needsId.id), configId = "not valid!"))
        assertEquals(SettingsField.CONFIG_ID, bad.field)
        assertTrue(bad.message.contains("not valid!"), bad.message)
    }

    @Test
    fun customServerErrorsLandOnTheirInputs() {
        assertNull(EngineConfigs.validate(custom()))
        assertNull(EngineConfigs.validate(custom(hostname = "", pins = pin)))

        val noAddress = errorOf(custom(addresses = " , "))
        assertEquals(SettingsField.CUSTOM_ADDRESSES, noAddress.field)
        assertEquals("servers[0].addresses", noAddress.coreField)

        val badAddress = errorOf(custom(addresses = "192.0.2.1, dns.example.net"))
        assertEquals(SettingsField.CUSTOM_ADDRESSES, badAddress.field)
        assertTrue(badAddress.message.contains("dns.example.net"), badAddress.message)

        val badName = errorOf(custom(hostname = "bad_name!.example"))
        assertEquals(SettingsField.CUSTOM_HOSTNAME, badName.field)

        val secondPinBad = errorOf(custom(pins = "$pin, AAAA"))
        assertEquals(SettingsField.CUSTOM_PINS, secondPinBad.field)
        assertEquals("servers[0].pins[1]", secondPinBad.coreField)
        assertTrue(secondPinBad.message.startsWith("Pin 2: "), secondPinBad.message)

        val portRange = errorOf(custom(port = "70000"))
        assertEquals(SettingsField.CUSTOM_PORT, portRange.field)
        assertEquals("servers[0].port", portRange.coreField)

        // Not a number at all: the app's own check, the core never sees it.
        val portText = errorOf(custom(port = "dot"))
        assertEquals(SettingsField.CUSTOM_PORT, portText.field)
        assertNull(portText.coreField)
    }

    /** A self-signed certificate as `openssl req -x509` makes it (CA:TRUE, P-256). */
    private val selfSigned = """
        -----BEGIN CERTIFICATE-----
        MIIBmDCCAT+gAwIBAgIUG6I0n3tnmzGgfUxWflK9EmLvigcwCgYIKoZIzj0EAwIw
        FjEUMBIGA1UEAwwLZG90LmV4YW1wbGUwHhcNMjYxMjAyMjA0MTE0WhcNMzYxMTI5
        MjA0MTE0WjAWMRQwEgYDVQQDDAtkb3QuZXhhbXBsZTBZMBMGByqGSM49AgEGCCqG
        SM49AwEHA0IABKKEgsNgHcYzd6/g6J6Of5lO8RS8xzTKCeHxi9H9h8TbpyPUSDBc
        kqU6wGo+xZVIFk35eIZkvmVtU3TxIgaFnoujazBpMB0GA1UdDgQWBBQx1PmzDyQu
        7+u+xQYtJnyC92Ig6DAfBgNVHSMEGDAWgBQx1PmzDyQu7+u+xQYtJnyC92Ig6DAP
        BgNVHRMBAf8EBTADAQH/MBYGA1UdEQQPMA2CC2RvdC5leGFtcGxlMAoGCCqGSM49
        BAMCA0cAMEQCIHNzqOiMgql0tgcNy8c68ci2G517tlfnoPBbjTdypDjuAiBDMSvb
        Fw7AX9nvS5+1DO/sSxNtkhOJdnZ9Kt+W4JvdlA==
        -----END CERTIFICATE-----
    """.trimIndent()

    @Test
    fun aCustomServersCaCertificateGoesToTheEngineAndItsErrorsToItsInput() {
        val withCa = custom(hostname = "", pins = "").let { it.copy(custom = it.custom.copy(caPem = "\n$selfSigned\n")) }
        // Strict mode with neither a name nor a pin is fine when a CA is
        // given: the address itself is checked against the certificate.
        assertNull(EngineConfigs.validate(withCa))
        val config = (EngineConfigs.toEngineConfig(withCa) as EngineConfigs.Result.Ok).config
        assertEquals(selfSigned, config.extraCaPem)

        val garbage = errorOf(withCa.copy(custom = withCa.custom.copy(caPem = "not a certificate")))
        assertEquals(SettingsField.CUSTOM_CA, garbage.field)
        assertEquals("extra_ca", garbage.coreField)

        // A provider is checked against the system's CAs only, whatever the
        // hidden custom form still holds.
        val provider = withCa.copy(server = ServerChoice.Provider(Settings.DEFAULT_PROVIDER_ID))
        assertNull((EngineConfigs.toEngineConfig(provider) as EngineConfigs.Result.Ok).config.extraCaPem)
        assertEquals(withCa, SettingsCodec.decode(SettingsCodec.encode(withCa)), "the CA is saved with the settings")
    }

    @Test
    fun strictModeNeedsANameOrAPinButOpportunisticDoesNot() {
        val e = errorOf(custom(hostname = "", pins = ""))
        assertEquals(SettingsField.CUSTOM_HOSTNAME, e.field)
        assertTrue(e.message.contains("strict"), e.message)
        assertNull(EngineConfigs.validate(custom(hostname = "", pins = "", mode = Mode.OPPORTUNISTIC)))
    }

    @Test
    fun networkResolversNeedOpportunisticMode() {
        val e = errorOf(Settings(server = ServerChoice.NetworkResolvers, mode = Mode.STRICT))
        assertEquals(SettingsField.MODE, e.field)
        assertTrue(e.message.contains("opportunistic"), e.message)
        assertNull(EngineConfigs.validate(Settings(server = ServerChoice.NetworkResolvers, mode = Mode.OPPORTUNISTIC)))
    }

    @Test
    fun inputsAreSplitAndTrimmedForTheEngine() {
        val s = custom(hostname = "  ", addresses = "192.0.2.1,\n [2001:db8::1]:8853 ;192.0.2.2", port = " 8853 ", pins = "$pin\n", mode = Mode.OPPORTUNISTIC)
        val config = (EngineConfigs.toEngineConfig(s, listOf("192.0.2.53")) as EngineConfigs.Result.Ok).config
        assertEquals(
            Upstream.Custom(listOf(CustomServer(null, listOf("192.0.2.1", "[2001:db8::1]:8853", "192.0.2.2"), 8853, listOf(pin)))),
            config.upstream,
        )
        assertEquals(listOf("192.0.2.53"), config.networkResolvers)
        assertEquals(Mode.OPPORTUNISTIC, config.mode)
        val provider = (EngineConfigs.toEngineConfig(Settings(configId = "  ")) as EngineConfigs.Result.Ok).config
        assertEquals(Upstream.Provider(Settings.DEFAULT_PROVIDER_ID, null), provider.upstream)
    }

    @Test
    fun anErrorOfASettingTheScreenDoesNotShowIsStillShown() {
        val e = EngineConfigs.fieldError("cache.max_ttl", "must not be negative", Settings())
        assertEquals(SettingsField.OTHER, e.field)
        assertEquals("cache.max_ttl: must not be negative", e.message)
    }

    @Test
    fun applyPlanRestartsAsLittleAsPossible() {
        val base = Settings(server = ServerChoice.Provider("cloudflare"))
        assertEquals(EngineConfigs.ApplyPlan.NOTHING, EngineConfigs.applyPlan(base, base.copy(startOnBoot = true)))
        // The custom server is not in use while a provider is selected.
        assertEquals(
            EngineConfigs.ApplyPlan.NOTHING,
            EngineConfigs.applyPlan(base, base.copy(custom = CustomServerInput(addresses = "192.0.2.9"))),
        )
        assertEquals(EngineConfigs.ApplyPlan.RESTART_ENGINE, EngineConfigs.applyPlan(base, base.copy(server = ServerChoice.Provider("quad9"))))
        assertEquals(EngineConfigs.ApplyPlan.RESTART_ENGINE, EngineConfigs.applyPlan(base, base.copy(mode = Mode.OPPORTUNISTIC)))
        assertEquals(EngineConfigs.ApplyPlan.RESTART_ENGINE, EngineConfigs.applyPlan(base, base.copy(queryLog = true)))
        assertEquals(
            EngineConfigs.ApplyPlan.REBUILD_TUNNEL,
            EngineConfigs.applyPlan(base, base.copy(excludedApps = setOf("com.example"), mode = Mode.OPPORTUNISTIC)),
        )
    }

    @Test
    fun serverLabels() {
        val catalogue = providers()
        val quad9 = catalogue.first { it.id == "quad9" }
        assertEquals(quad9.displayName, EngineConfigs.serverLabel(Settings(server = ServerChoice.Provider("quad9")), catalogue))
        assertEquals("dns.example.net", EngineConfigs.serverLabel(custom(), catalogue))
        assertEquals("192.0.2.1", EngineConfigs.serverLabel(custom(hostname = ""), catalogue))
        assertEquals("Network's resolvers", EngineConfigs.serverLabel(Settings(server = ServerChoice.NetworkResolvers), catalogue))
    }
}
