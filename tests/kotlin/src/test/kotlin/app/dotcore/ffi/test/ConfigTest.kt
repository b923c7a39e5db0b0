package app.dotcore.ffi.test

import app.dotcore.ffi.CustomServer
import app.dotcore.ffi.DotEngine
import app.dotcore.ffi.DotException
import app.dotcore.ffi.EngineConfig
import app.dotcore.ffi.Mode
import app.dotcore.ffi.Upstream
import app.dotcore.ffi.defaultCacheSettings
import app.dotcore.ffi.defaultIdleSettings
import app.dotcore.ffi.providers
import app.dotcore.ffi.tunnelConfig
import java.net.Inet4Address
import java.net.Inet6Address
import java.net.InetAddress
import app.dotcore.ffi.validateConfig
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test

/** Settings-screen functions: the provider catalogue and validation. */
class ConfigTest {
    private val pin = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

    private fun custom(server: CustomServer, mode: Mode = Mode.STRICT) =
        EngineConfig(upstream = Upstream.Custom(listOf(server)), mode = mode)

    private fun rejected(config: EngineConfig): DotException.InvalidConfig {
        val fromValidate = assertFailsWith<DotException.InvalidConfig> { validateConfig(config) }
        // The constructor refuses the same configuration the same way.
        val fromEngine = assertFailsWith<DotException.InvalidConfig> { DotEngine(config, null) }
        assertEquals(fromValidate.field, fromEngine.field)
        assertEquals(fromValidate.reason, fromEngine.reason)
        assertContains(fromValidate.message!!, fromValidate.field)
        return fromValidate
    }

    @Test
    fun `providers come from the core catalogue`() {
        val list = providers()
        assertEquals("cloudflare", list.first().id, "the default provider is first")
        val ids = list.map { it.id }
        assertEquals(ids.distinct(), ids)
        assertTrue(list.all { it.addresses.isNotEmpty() && it.port == 853 && it.displayName.isNotBlank() })
        val nextdns = list.single { it.id == "nextdns" }
        assertTrue(nextdns.needsConfigId)
        assertContains(nextdns.authName, "{id}")
    }

    @Test
    fun `valid configurations pass`() {
        validateConfig(EngineConfig(upstream = Upstream.Provider("quad9", null), mode = Mode.STRICT))
        validateConfig(EngineConfig(upstream = Upstream.Provider("nextdns", "abc123"), mode = Mode.STRICT))
        validateConfig(custom(CustomServer(addresses = listOf("[::1]:8853", "127.0.0.1"), pins = listOf(pin))))
        validateConfig(
            EngineConfig(
                upstream = Upstream.NetworkResolvers,
                mode = Mode.OPPORTUNISTIC,
                networkResolvers = listOf("192.0.2.53"),
            ),
        )
    }

    @Test
    fun `bad configurations are rejected naming the field`() {
        rejected(EngineConfig(upstream = Upstream.Provider("nope", null), mode = Mode.STRICT)).let {
            assertEquals("provider", it.field)
            assertContains(it.reason, "unknown provider \"nope\"")
        }
        rejected(EngineConfig(upstream = Upstream.Provider("nextdns", null), mode = Mode.STRICT)).let {
            assertEquals("config_id", it.field)
            assertContains(it.reason, "configuration ID")
        }
        rejected(custom(CustomServer(name = "dot.test", addresses = listOf("127.0.0.1"), pins = listOf(pin, "AAAA")))).let {
            assertEquals("servers[0].pins[1]", it.field)
            assertContains(it.reason, "pin-sha256")
            assertTrue(!it.reason.startsWith(it.field), "reason is the text without the field: ${it.reason}")
        }
        rejected(custom(CustomServer(name = "dot.test", addresses = listOf("not-an-ip")))).let {
            assertEquals("servers[0].addresses", it.field)
        }
        rejected(custom(CustomServer(addresses = listOf("127.0.0.1")))).let {
            assertEquals("servers[0].name", it.field)
            assertContains(it.reason, "strict mode needs")
        }
        rejected(custom(CustomServer(name = "dot.test", addresses = listOf("127.0.0.1"), port = 70_000))).let {
            assertEquals("servers[0].port", it.field)
        }
        rejected(EngineConfig(upstream = Upstream.Custom(emptyList()), mode = Mode.STRICT)).let {
            assertEquals("servers", it.field)
        }
        rejected(EngineConfig(upstream = Upstream.Provider("quad9", null), mode = Mode.STRICT, extraCaPem = "garbage")).let {
            assertEquals("extra_ca", it.field)
        }
        rejected(EngineConfig(upstream = Upstream.NetworkResolvers, mode = Mode.STRICT)).let {
            assertEquals("servers", it.field, "strict mode needs servers of its own")
        }
        rejected(
            EngineConfig(
                upstream = Upstream.Provider("quad9", null),
                mode = Mode.STRICT,
                networkResolvers = listOf("192.0.2.1", "resolver.example"),
            ),
        ).let { assertEquals("network_resolvers[1]", it.field) }
        rejected(
            EngineConfig(
                upstream = Upstream.Provider("quad9", null),
                mode = Mode.STRICT,
                cache = defaultCacheSettings().copy(minTtlSecs = 600, maxTtlSecs = 60),
            ),
        ).let { assertEquals("cache.min_ttl", it.field) }
        rejected(
            EngineConfig(
                upstream = Upstream.Provider("quad9", null),
                mode = Mode.STRICT,
                idle = defaultIdleSettings().copy(interactiveSecs = -1),
            ),
        ).let { assertEquals("idle.interactive", it.field) }
        rejected(
            EngineConfig(
                upstream = Upstream.Provider("quad9", null),
                mode = Mode.STRICT,
                idle = defaultIdleSettings().copy(idleSecs = 7200),
            ),
        ).let { assertEquals("idle.idle", it.field) }
    }

    @Test
    fun `defaults come from the engine`() {
        val c = EngineConfig(upstream = Upstream.NetworkResolvers, mode = Mode.OPPORTUNISTIC)
        assertEquals(null, c.cache, "null means the engine's defaults")
        assertEquals(null, c.idle)
        assertEquals(null, c.extraCaPem)
        assertEquals(false, c.queryLog)
        assertEquals(emptyList(), c.networkResolvers)
        val cache = defaultCacheSettings()
        assertTrue(cache.maxEntries > 0 && cache.minTtlSecs <= cache.maxTtlSecs, "$cache")
        val idle = defaultIdleSettings()
        assertTrue(idle.interactiveSecs >= idle.idleSecs && idle.idleSecs >= idle.deepIdleSecs, "$idle")
        // Spelling the defaults out is the same as leaving them null.
        validateConfig(c.copy(cache = cache, idle = idle))
    }

    @Test
    fun `the tunnel configuration is everything VpnService Builder needs`() {
        val tunnel = tunnelConfig()
        val dns = tunnel.dnsServers.map { InetAddress.getByName(it) }
        assertEquals(2, dns.size)
        assertTrue(dns[0] is Inet4Address && dns[1] is Inet6Address, "$dns")
        assertTrue(dns.all { it.isSiteLocalAddress || it.address[0] == 0xfd.toByte() }, "private addresses: $dns")
        // Routed: the DNS servers' host routes and nothing else.
        assertEquals(tunnel.dnsServers.map { it to if (':' in it) 128 else 32 }, tunnel.routes.map { it.address to it.prefixLength })
        val iface = tunnel.interfaceAddresses
        assertEquals(2, iface.size)
        assertTrue(InetAddress.getByName(iface[0].address) is Inet4Address)
        assertTrue(InetAddress.getByName(iface[1].address) is Inet6Address)
        assertTrue(iface[0].prefixLength in 1..32 && iface[1].prefixLength in 1..128)
        assertTrue(iface.none { it.address in tunnel.dnsServers })
        assertTrue(tunnel.mtu in 1280..65535, "MTU ${tunnel.mtu} carries the IPv6 minimum")
    }
}
