package app.dotcore.ffi.test

import app.dotcore.ffi.AnswerSource
import app.dotcore.ffi.CustomServer
import app.dotcore.ffi.DotEngine
import app.dotcore.ffi.DotException
import app.dotcore.ffi.EngineConfig
import app.dotcore.ffi.EngineEvent
import app.dotcore.ffi.Mode
import app.dotcore.ffi.NetworkInfo
import app.dotcore.ffi.PowerState
import app.dotcore.ffi.Upstream
import app.dotcore.ffi.tunnelConfig
import java.net.Inet4Address
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.Base64
import kotlin.test.assertContains
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.Timeout

/**
 * The engine through its Kotlin API, against the real library and a real
 * unbound DoT server on loopback. Each test creates its own engine, so
 * counters and events start from zero.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(120)
class DotEngineTest {
    private lateinit var fixture: UnboundFixture

    @BeforeAll
    fun startUnbound() {
        fixture = UnboundFixture.start()
    }

    @AfterAll
    fun stopUnbound() {
        if (::fixture.isInitialized) fixture.close()
    }

    /** Strict mode, authenticated by the leaf's SPKI pin only (no name, no CA). */
    private fun pinned(pin: String = fixture.leafPin) = EngineConfig(
        upstream = Upstream.Custom(listOf(CustomServer(addresses = listOf(fixture.dot), pins = listOf(pin)))),
        mode = Mode.STRICT,
    )

    /** Strict mode, authenticated by name against the test CA. */
    private fun withCa(queryLog: Boolean = false) = EngineConfig(
        upstream = Upstream.Custom(listOf(CustomServer(name = fixture.dotName, addresses = listOf(fixture.dot)))),
        mode = Mode.STRICT,
        extraCaPem = fixture.caPem,
        queryLog = queryLog,
    )

    private fun <T> blocking(timeoutMs: Long = 30_000, block: suspend () -> T): T =
        runBlocking { withTimeout(timeoutMs) { block() } }

    @Test
    fun `strict mode with a pin resolves through the engine`() {
        DotEngine(pinned(), RecordingDelegate()).use { engine ->
            val answer = blocking { engine.lookup(fixture.aName, "A") }
            assertEquals("NOERROR", answer.rcode)
            assertEquals(listOf(fixture.aV4), answer.records.map { it.data })
            assertEquals(fixture.aName, answer.records[0].name)
            assertEquals("A", answer.records[0].recordType)
            assertTrue(answer.records[0].ttlSecs in 1..fixture.aTtl, "ttl ${answer.records[0].ttlSecs}")

            // The raw wire-format entry point, as the TUN path uses it.
            val reply = blocking { engine.resolve(DnsWire.query(0x1234, fixture.aName, DnsWire.AAAA)) }
            assertTrue(DnsWire.isResponse(reply))
            assertEquals(0x1234, DnsWire.id(reply), "the client's ID comes back")
            assertEquals(DnsWire.NOERROR, DnsWire.rcode(reply))
            assertEquals(1, DnsWire.answerCount(reply))
        }
    }

    @Test
    fun `strict mode with the CA and name resolves and reports the server validated`() {
        val delegate = RecordingDelegate()
        DotEngine(withCa(), delegate).use { engine ->
            val txt = blocking { engine.lookup(fixture.txtName, "TXT") }
            assertEquals("NOERROR", txt.rcode)
            assertContains(txt.records.single().data, fixture.txtValue)
            val nx = blocking { engine.lookup(fixture.nxName, "A") }
            assertEquals("NXDOMAIN", nx.rcode)
            val validated = delegate.awaitEvent<EngineEvent.ServerValidated>()
            assertEquals(fixture.dotName, validated.server)
            assertEquals(fixture.dot, validated.address)
            assertTrue(validated.authenticated)
            val status = engine.stats().servers.single()
            assertEquals(fixture.dotName, status.server)
            assertEquals(fixture.dot, status.address)
            assertTrue(status.connected, "$status")
            assertEquals(true, status.authenticated)
            assertNull(status.lastFailure, "a working server has no failure: $status")
        }
    }

    @Test
    fun `a wrong pin gives SERVFAIL and never an answer`() {
        val wrongPin = Base64.getEncoder().encodeToString(ByteArray(32))
        val delegate = RecordingDelegate()
        DotEngine(pinned(wrongPin), delegate).use { engine ->
            val answer = blocking { engine.lookup(fixture.aName, "A") }
            assertEquals("SERVFAIL", answer.rcode)
            assertTrue(answer.records.isEmpty())
            val reply = blocking { engine.resolve(DnsWire.query(7, fixture.aName, DnsWire.A)) }
            assertEquals(DnsWire.SERVFAIL, DnsWire.rcode(reply))
            assertEquals(7, DnsWire.id(reply))
            val stats = engine.stats()
            assertTrue(stats.failTls >= 1, "TLS failures counted: $stats")
            assertEquals(0L, stats.cleartextQueries)
            assertTrue(delegate.eventsOf<EngineEvent.ServerValidated>().isEmpty(), "${delegate.events}")
            val failed = delegate.awaitEvent<EngineEvent.ServerFailed>()
            assertEquals(fixture.dot, failed.address)
            // Two queries failing the same way: one event.
            assertEquals(1, delegate.eventsOf<EngineEvent.ServerFailed>().size, "${delegate.events}")
            val failure = assertNotNull(stats.servers.single().lastFailure, "${stats.servers}")
            assertTrue(failure.authentication, "a pin is the user's to fix: $failure")
            assertEquals(failed.kind, failure.kind)
            assertEquals(failed.reason, failure.text)
        }
    }

    @Test
    fun `a refused port reaches Kotlin as connection_refused with its address and reason`() {
        // A socket bound and never listening holds the port: connects to it
        // are refused, and no other process can take it meanwhile.
        Socket().use { reserved ->
            reserved.bind(InetSocketAddress(InetAddress.getLoopbackAddress(), 0))
            val address = "127.0.0.1:${reserved.localPort}"
            val delegate = RecordingDelegate()
            val config = EngineConfig(
                upstream = Upstream.Custom(listOf(CustomServer(name = fixture.dotName, addresses = listOf(address)))),
                mode = Mode.STRICT,
            )
            DotEngine(config, delegate).use { engine ->
                repeat(3) { assertEquals("SERVFAIL", blocking { engine.lookup(fixture.aName, "A") }.rcode) }
                val failed = delegate.awaitEvent<EngineEvent.ServerFailed>()
                assertEquals(fixture.dotName, failed.server)
                assertEquals(address, failed.address)
                assertEquals("connection_refused", failed.kind)
                assertContains(failed.reason, "refused")
                assertEquals(1, delegate.eventsOf<EngineEvent.ServerFailed>().size, "once per change: ${delegate.events}")

                val status = engine.stats().servers.single()
                assertEquals(address, status.address)
                assertEquals(false, status.connected)
                assertNull(status.authenticated, "never shook hands: $status")
                val failure = assertNotNull(status.lastFailure)
                assertEquals("connection_refused", failure.kind)
                assertEquals(failed.reason, failure.text)
                assertEquals(false, failure.authentication, "a refused port is not a settings problem")
                assertEquals(3L, engine.stats().failConnect)
            }
        }
    }

    @Test
    fun `protectSocket is called once per upstream socket with an open TCP socket`() {
        val delegate = RecordingDelegate()
        DotEngine(withCa(), delegate).use { engine ->
            blocking { engine.lookup(fixture.aName, "A") }
            blocking { engine.lookup(fixture.txtName, "TXT") }
            assertEquals(1L, engine.stats().connectionsOpened)
            assertEquals(1, delegate.protectedFds.size, "one connection, one protect call")

            // A network change drops the connection; the next query opens
            // (and protects) a new one.
            engine.onNetworkChanged(NetworkInfo(dnsServers = listOf(fixture.plain)))
            eventually(what = "the connection to close") { engine.stats().connectionsOpenNow == 0L }
            blocking { engine.lookup(fixture.aName, "AAAA") }
            val stats = engine.stats()
            assertEquals(2L, stats.connectionsOpened)
            assertEquals(stats.connectionsOpened.toInt(), delegate.protectedFds.size)
            for ((fd, type) in delegate.protectedFds.zip(delegate.socketTypes)) {
                assertTrue(fd > 2, "fd $fd is a fresh descriptor")
                assertEquals(LibC.SOCK_STREAM, type, "fd $fd was an open TCP socket during protectSocket")
            }
        }
    }

    @Test
    fun `a socket the host does not protect is never used`() {
        // Refusing (false) and throwing both mean: do not send anything.
        val refusing = RecordingDelegate(protect = { false })
        val throwing = RecordingDelegate(protect = { throw IllegalStateException("VpnService is gone (expected)") })
        for (delegate in listOf(refusing, throwing)) {
            DotEngine(withCa(), delegate).use { engine ->
                val answer = blocking { engine.lookup(fixture.aName, "A") }
                assertEquals("SERVFAIL", answer.rcode)
                val stats = engine.stats()
                assertTrue(stats.failConnect >= 1, "$stats")
                assertEquals(0L, stats.handshakesFull)
                assertTrue(delegate.protectedFds.isNotEmpty())
                assertTrue(delegate.eventsOf<EngineEvent.ServerValidated>().isEmpty())
                // Still alive and answering calls.
                engine.setPowerState(PowerState.IDLE)
            }
        }
    }

    @Test
    fun `events arrive in order, with the query log when enabled`() {
        val delegate = RecordingDelegate()
        val engine = DotEngine(withCa(queryLog = true), delegate)
        assertEquals(EngineEvent.Started, delegate.events.first(), "Started is delivered by the constructor")
        blocking { engine.lookup(fixture.aName, "A") }
        blocking { engine.lookup(fixture.aName, "A") }
        delegate.awaitEvent<EngineEvent.ServerValidated> { it.authenticated }
        val queries = delegate.eventsOf<EngineEvent.Query>()
        assertEquals(2, queries.size, "${delegate.events}")
        assertEquals(fixture.aName, queries[0].name)
        assertEquals(DnsWire.A, queries[0].qtype)
        assertEquals(DnsWire.NOERROR, queries[0].rcode)
        assertEquals(AnswerSource.TLS, queries[0].source)
        assertEquals(AnswerSource.CACHE, queries[1].source)
        assertTrue(queries.all { it.latencyMicros >= 0 })
        engine.stop()
        assertEquals(EngineEvent.Stopped, delegate.events.last())
        engine.close()
    }

    @Test
    fun `a throwing onEvent does not disturb the engine`() {
        val delegate = RecordingDelegate(throwOnEvent = true)
        DotEngine(withCa(queryLog = true), delegate).use { engine ->
            val answer = blocking { engine.lookup(fixture.aName, "A") }
            assertEquals("NOERROR", answer.rcode)
            assertTrue(delegate.eventsOf<EngineEvent.Query>().isNotEmpty())
        }
    }

    @Test
    fun `stats move with queries, cache hits and traffic`() {
        DotEngine(withCa(), RecordingDelegate()).use { engine ->
            val before = engine.stats()
            assertEquals(0L, before.queries)
            assertEquals(0L, before.connectionsOpened)
            blocking { engine.lookup(fixture.aName, "A") }
            blocking { engine.lookup(fixture.aName, "A") }
            blocking { engine.lookup(fixture.txtName, "TXT") }
            val stats = engine.stats()
            assertEquals(3L, stats.queries)
            assertEquals(1L, stats.cacheHits)
            assertEquals(2L, stats.upstreamQueries)
            assertEquals(1L, stats.handshakesFull)
            assertEquals(1L, stats.connectionsOpenNow)
            assertEquals(0L, stats.failures)
            assertTrue(stats.bytesSent > 0 && stats.bytesReceived > 0, "$stats")
            assertEquals(stats.latencyBucketsMs.size + 1, stats.latencyHistogram.size)
            assertEquals(3L, stats.latencyHistogram.sum())
        }
    }

    @Test
    fun `power state reaches the engine - deep idle closes the idle connection`() {
        DotEngine(withCa(), RecordingDelegate()).use { engine ->
            engine.setPowerState(PowerState.INTERACTIVE)
            blocking { engine.lookup(fixture.aName, "A") }
            assertEquals(1L, engine.stats().connectionsOpenNow, "interactive keeps it open (10 s or more)")
            engine.setPowerState(PowerState.DEEP_IDLE)
            eventually(what = "deep idle to close the connection") { engine.stats().connectionsOpenNow == 0L }
            engine.setPowerState(PowerState.IDLE)
        }
    }

    @Test
    fun `a network change drops connections and cached answers`() {
        DotEngine(withCa(), RecordingDelegate()).use { engine ->
            blocking { engine.lookup(fixture.aName, "A") }
            // Scoped link-local addresses, as Android prints them, are skipped.
            engine.onNetworkChanged(
                NetworkInfo(dnsServers = listOf("fe80::1%wlan0", fixture.plain), metered = true, validated = true),
            )
            eventually(what = "the connection to close") { engine.stats().connectionsOpenNow == 0L }
            blocking { engine.lookup(fixture.aName, "A") }
            val stats = engine.stats()
            assertEquals(0L, stats.cacheHits, "the cache was emptied")
            assertEquals(2L, stats.upstreamQueries)

            val bad = assertFailsWith<DotException.InvalidConfig> {
                engine.onNetworkChanged(NetworkInfo(dnsServers = listOf("192.0.2.53", "dns.example")))
            }
            assertEquals("dns_servers[1]", bad.field)
            assertContains(bad.reason, "dns.example")
        }
    }

    @Test
    fun `opportunistic mode falls back to the network's resolver in clear text`() {
        // A port with nothing listening: DoT is refused at once.
        val closedPort = ServerSocket(0).use { it.localPort }
        val delegate = RecordingDelegate()
        val config = EngineConfig(
            upstream = Upstream.Custom(listOf(CustomServer(name = fixture.dotName, addresses = listOf("127.0.0.1:$closedPort")))),
            mode = Mode.OPPORTUNISTIC,
            networkResolvers = listOf(fixture.plain),
        )
        DotEngine(config, delegate).use { engine ->
            val answer = blocking { engine.lookup(fixture.aName, "A") }
            assertEquals(listOf(fixture.aV4), answer.records.map { it.data })
            assertTrue(engine.stats().cleartextQueries >= 1)
            delegate.awaitEvent<EngineEvent.CleartextFallback> { it.retryInMillis > 0 }
            // Clear-text sockets are protected too.
            assertTrue(delegate.protectedFds.size >= 2, "${delegate.protectedFds}")
        }
    }

    @Test
    fun `1000 concurrent resolve calls from coroutines are all answered`() {
        DotEngine(withCa(), RecordingDelegate()).use { engine ->
            val replies = blocking(60_000) {
                withContext(Dispatchers.Default) {
                    (0 until 1000).map { i ->
                        async {
                            i to engine.resolve(DnsWire.query(i, "q$i.${fixture.benchZone}", DnsWire.A))
                        }
                    }.awaitAll()
                }
            }
            assertEquals(1000, replies.size)
            for ((i, reply) in replies) {
                assertEquals(i, DnsWire.id(reply), "reply $i carries its query's ID")
                assertEquals(DnsWire.NOERROR, DnsWire.rcode(reply), "reply $i")
                assertEquals(1, DnsWire.answerCount(reply), "reply $i")
            }
            val stats = engine.stats()
            assertEquals(1000L, stats.queries)
            assertEquals(1000L, stats.upstreamQueries)
            assertEquals(0L, stats.failures)
            assertEquals(1L, stats.connectionsOpened, "pipelined on one connection")
        }
    }

    @Test
    fun `lookup rejects a bad record type with InvalidQuery`() {
        DotEngine(withCa(), RecordingDelegate()).use { engine ->
            val e = assertFailsWith<DotException.InvalidQuery> { blocking { engine.lookup(fixture.aName, "NOPE") } }
            assertContains(e.reason, "NOPE")
            // Default record type is A.
            assertEquals(listOf(fixture.aV4), blocking { engine.lookup(fixture.aName) }.records.map { it.data })
        }
    }

    @Test
    fun `stop ends the engine, later calls fail cleanly, close frees the native object`() {
        val delegate = RecordingDelegate()
        val engine = DotEngine(withCa(), delegate)
        blocking { engine.lookup(fixture.aName, "A") }
        assertTrue(engine.isRunning())
        engine.stop()
        engine.stop() // idempotent
        assertEquals(false, engine.isRunning())
        assertEquals(1, delegate.eventsOf<EngineEvent.Stopped>().size)
        assertEquals(0L, engine.stats().connectionsOpenNow, "stop closed the connection")
        assertEquals(1L, engine.stats().queries, "stats still readable after stop")
        assertFailsWith<DotException.Stopped> { blocking { engine.resolve(DnsWire.query(1, fixture.aName, DnsWire.A)) } }
        assertFailsWith<DotException.Stopped> { blocking { engine.lookup(fixture.aName, "A") } }
        assertFailsWith<DotException.Stopped> { engine.setPowerState(PowerState.IDLE) }
        assertFailsWith<DotException.Stopped> { engine.onNetworkChanged(NetworkInfo(dnsServers = emptyList())) }
        engine.close()
        engine.close() // idempotent
        assertFailsWith<IllegalStateException> { engine.stats() }

        // close() without stop(): dropping the native object stops the engine.
        val other = RecordingDelegate()
        val second = DotEngine(withCa(), other)
        blocking { second.lookup(fixture.aName, "A") }
        second.close()
        other.awaitEvent<EngineEvent.Stopped>()
        assertFailsWith<IllegalStateException> { blocking { second.lookup(fixture.aName, "A") } }
    }

    @Test
    fun `start takes ownership of the TUN descriptor and closes it on stop`() {
        val libc = LibC.INSTANCE
        val pair = IntArray(2)
        assertEquals(0, libc.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET, 0, pair))
        val (tunFd, peerFd) = pair.toList()
        try {
            DotEngine(withCa(), RecordingDelegate()).use { engine ->
                assertFailsWith<DotException.Tun> { engine.start(-1) }
                engine.start(tunFd)
                val again = IntArray(2)
                assertEquals(0, libc.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET, 0, again))
                assertFailsWith<DotException.AlreadyStarted> { engine.start(again[0]) }
                libc.close(again[1])
                // The engine still answers its API while attached.
                assertEquals("NOERROR", blocking { engine.lookup(fixture.aName, "A") }.rcode)

                // Our end stays readable-but-empty while the engine holds the
                // other end; after stop() it reads EOF.
                libc.fcntl(peerFd, LibC.F_SETFL, libc.fcntl(peerFd, LibC.F_GETFL, 0) or LibC.O_NONBLOCK)
                val buf = ByteArray(64)
                assertEquals(-1L, libc.read(peerFd, buf, buf.size.toLong()), "no EOF while attached")
                engine.stop()
                eventually(what = "EOF on the peer of the TUN descriptor") {
                    libc.read(peerFd, buf, buf.size.toLong()) == 0L
                }
                assertFailsWith<DotException.Stopped> {
                    val late = IntArray(2)
                    libc.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET, 0, late)
                    libc.close(late[1])
                    engine.start(late[0])
                }
            }
        } finally {
            libc.close(peerFd)
        }
    }

    @Test
    fun `a DNS packet written to the TUN descriptor is answered through DoT`() {
        val libc = LibC.INSTANCE
        val pair = IntArray(2)
        // SOCK_SEQPACKET keeps packet boundaries, like a TUN device.
        assertEquals(0, libc.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET, 0, pair))
        val (tunFd, appFd) = pair.toList()
        try {
            DotEngine(withCa(), RecordingDelegate()).use { engine ->
                engine.start(tunFd)
                val client = (InetAddress.getByName(tunnelConfig().interfaceAddresses[0].address) as Inet4Address).address
                val dns = (InetAddress.getByName(tunnelConfig().dnsServers[0]) as Inet4Address).address
                val query = DnsWire.query(0x4242, fixture.aName, DnsWire.A)
                val packet = Ipv4Udp.packet(client, dns, 40_000, 53, query)
                assertEquals(packet.size.toLong(), libc.write(appFd, packet, packet.size.toLong()))

                libc.fcntl(appFd, LibC.F_SETFL, libc.fcntl(appFd, LibC.F_GETFL, 0) or LibC.O_NONBLOCK)
                val buf = ByteArray(4096)
                var n = -1L
                eventually(10_000, "an answer packet on the TUN device") {
                    n = libc.read(appFd, buf, buf.size.toLong())
                    n > 0
                }
                val answer = assertNotNull(Ipv4Udp.parse(buf.copyOf(n.toInt())), "an IPv4/UDP packet")
                assertContentEquals(dns, answer.src)
                assertContentEquals(client, answer.dst)
                assertEquals(53, answer.srcPort)
                assertEquals(40_000, answer.dstPort)
                assertEquals(0x4242, DnsWire.id(answer.payload))
                assertEquals(DnsWire.NOERROR, DnsWire.rcode(answer.payload))
                assertEquals(1, DnsWire.answerCount(answer.payload))
                val stats = engine.stats()
                assertEquals(1L, stats.queries)
                assertEquals(1L, stats.upstreamQueries)
            }
        } finally {
            libc.close(appFd)
        }
    }
}
