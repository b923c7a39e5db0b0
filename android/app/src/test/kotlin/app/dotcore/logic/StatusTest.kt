package app.dotcore.logic

import app.dotcore.ffi.AnswerSource
import app.dotcore.ffi.EngineEvent
import app.dotcore.ffi.EngineStats
import app.dotcore.ffi.Mode
import app.dotcore.ffi.serverFailureKinds
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.Locale

class StatusTest {
    private val f = Formats(Locale.US)

    private fun stats(queries: Long = 0, cacheHits: Long = 0, failures: Long = 0, meanMicros: Long = 0, full: Long = 0, resumed: Long = 0) =
        EngineStats(
            queries = queries, cacheHits = cacheHits, coalesced = 0, upstreamQueries = 0, cleartextQueries = 0,
            retries = 0, failures = failures, failConnect = 0, failTls = failures, failTimeout = 0,
            failConnectionLost = 0, failBadResponse = 0, failBadQuery = 0, failCleartext = 0, failRandom = 0,
            handshakesFull = full, handshakesResumed = resumed, connectionsOpened = 0, connectionsOpenNow = 0,
            connectionOpenMillis = 0, bytesSent = 0, bytesReceived = 0, meanLatencyMicros = meanMicros,
            latencyBucketsMs = emptyList(), latencyHistogram = emptyList(),
        )

    @Test
    fun serverStatusFollowsTheEngineEvents() {
        var s = ServerStatus()
        assertFalse(s.validated)
        s = s.on(EngineEvent.ServerValidated("one.one.one.one", "1.1.1.1:853", authenticated = true, resumed = false))
        assertTrue(s.validated)
        assertEquals("one.one.one.one", s.validatedServer)
        s = s.on(EngineEvent.ServerFailed("one.one.one.one", "pin mismatch"))
        assertFalse(s.validated)
        assertEquals("one.one.one.one: pin mismatch", s.lastFailure)
        s = s.on(EngineEvent.ServerValidated("one.one.one.one", "1.0.0.1:853", authenticated = true, resumed = true))
        assertTrue(s.validated)
        assertNull(s.lastFailure)
        s = s.on(EngineEvent.CleartextFallback("handshake timed out", 30_000))
        assertEquals("handshake timed out", s.cleartextReason)
        s = s.on(EngineEvent.TlsRestored)
        assertNull(s.cleartextReason)
        assertEquals(s, s.on(EngineEvent.Query("a.", 1, 0, AnswerSource.TLS, 10)))
        assertEquals(ServerStatus(), s.on(EngineEvent.Started))
    }

    @Test
    fun summaryRatesAndAnswered() {
        val s = StatsSummary.of(stats(queries = 200, cacheHits = 50, failures = 20, meanMicros = 12_345))
        assertEquals(180, s.answered)
        assertEquals(0.25, s.cacheHitRate)
        assertNull(StatsSummary.of(stats()).cacheHitRate, "no rate before the first query")
        assertEquals(
            listOf(
                "Queries: 200 (20 failed)",
                "Cache hit rate: 25 %",
                "Average latency: 12.3 ms",
                "TLS handshakes: 1 full, 41 resumed",
                "Clear-text answers: 0",
            ),
            StatusTexts.counters(StatsSummary.of(stats(200, 50, 20, 12_345, 1, 41)), f),
        )
        assertEquals("Average latency: –", StatusTexts.counters(StatsSummary.EMPTY, f)[2])
    }

    @Test
    fun notificationTextPerState() {
        val base = AppStatus(serverLabel = "Cloudflare", mode = Mode.STRICT)
        val running = base.copy(
            service = ServiceState.Running(Settings()),
            stats = StatsSummary.of(stats(queries = 1234, cacheHits = 617)),
        )
        assertEquals(NotificationText("Cloudflare · strict", "1,234 queries answered · 50 % from cache"), StatusTexts.notification(running, f))
        assertEquals(
            "0 queries answered",
            StatusTexts.notification(base.copy(service = ServiceState.Running(Settings())), f).text,
        )
        assertEquals("Starting…", StatusTexts.notification(base.copy(service = ServiceState.Starting(Settings())), f).text)
        assertEquals("Stopped: no permission", StatusTexts.notification(base.copy(service = ServiceState.Stopped("no permission")), f).text)
        val opportunistic = running.copy(mode = Mode.OPPORTUNISTIC, server = ServerStatus(cleartextReason = "port 853 blocked"))
        assertEquals("Cloudflare · opportunistic", StatusTexts.notification(opportunistic, f).title)
        assertTrue(StatusTexts.notification(opportunistic, f).text.endsWith("clear text: port 853 blocked"))
        assertTrue(StatusTexts.notification(running.copy(server = ServerStatus(lastFailure = "x")), f).text.endsWith("server failing"))
        // What breaks the VPN outranks the counters.
        assertEquals(
            "Lockdown blocks all non-DNS traffic. Open dotcore.",
            StatusTexts.notification(running.copy(warnings = listOf(Warning.PRIVATE_DNS_STRICT, Warning.LOCKDOWN)), f).text,
        )
        assertEquals(
            "Bypassed by Android's Private DNS. Open dotcore.",
            StatusTexts.notification(running.copy(warnings = listOf(Warning.PRIVATE_DNS_STRICT)), f).text,
        )
    }

    @Test
    fun validationLine() {
        val on = AppStatus(service = ServiceState.Running(Settings()))
        assertEquals("Not running", StatusTexts.validation(AppStatus()))
        assertEquals("Not validated yet (no query sent)", StatusTexts.validation(on))
        assertEquals(
            "Validated: dns.quad9.net (authenticated)",
            StatusTexts.validation(on.copy(server = ServerStatus("dns.quad9.net", authenticated = true))),
        )
        assertEquals(
            "Connected: 192.0.2.1 (encrypted, not authenticated)",
            StatusTexts.validation(on.copy(server = ServerStatus("192.0.2.1", authenticated = false))),
        )
        assertEquals("Not validated: a: b", StatusTexts.validation(on.copy(server = ServerStatus(lastFailure = "a: b"))))
    }

    @Test
    fun aFailureKeepsItsKindAndTheStatusSaysWhatToDo() {
        val on = AppStatus(service = ServiceState.Running(Settings()), mode = Mode.STRICT)
        var s = ServerStatus().on(
            EngineEvent.ServerFailed(
                "dot.test", "certificate is not valid for dot.test (it names other.example)",
                address = "127.0.0.1:853", kind = "certificate_name_mismatch",
            ),
        )
        assertEquals("certificate_name_mismatch", s.lastFailureKind)
        val nameAdvice = StatusTexts.advice(on.copy(server = s))
        assertTrue(nameAdvice!!.startsWith("Check the server name"), nameAdvice)

        s = s.on(EngineEvent.ServerFailed("dot.test", "pin mismatch", address = "127.0.0.1:853", kind = "pin_mismatch"))
        assertTrue(StatusTexts.advice(on.copy(server = s))!!.startsWith("Update the pin"))

        s = s.on(EngineEvent.ServerValidated("dot.test", "127.0.0.1:853", authenticated = true, resumed = false))
        assertNull(s.lastFailureKind)
        assertNull(StatusTexts.advice(on.copy(server = s)), "no advice once validated")
        assertNull(StatusTexts.advice(AppStatus(server = ServerStatus(lastFailure = "x", lastFailureKind = "pin_mismatch"))), "none when off")
        val cleartext = ServerStatus(lastFailure = "x", lastFailureKind = "connect_timed_out", cleartextReason = "handshake timed out")
        assertNull(StatusTexts.advice(on.copy(server = cleartext)), "clear text answers meanwhile: the screen says that instead")
    }

    @Test
    fun everyFailureKindTheEngineReportsHasItsOwnAdvice() {
        // From the real engine's list, so a kind added there without advice
        // here fails this test instead of falling to the generic text.
        val kinds = serverFailureKinds()
        assertTrue(kinds.size >= 17, "kinds: $kinds")
        for (mode in Mode.entries) {
            val generic = FailureAdvice.of(null, mode)
            for (kind in kinds) {
                assertFalse(FailureAdvice.of(kind, mode) == generic, "no advice of its own for $kind")
            }
        }
        assertTrue(FailureAdvice.of("connect_timed_out", Mode.STRICT).contains("opportunistic mode"))
    }

    @Test
    fun warnings() {
        assertEquals(emptyList<Warning>(), Warning.current(null, lockdown = false))
        assertEquals(emptyList<Warning>(), Warning.current("", lockdown = false))
        assertEquals(listOf(Warning.PRIVATE_DNS_STRICT), Warning.current("dns.google", lockdown = false))
        assertEquals(listOf(Warning.PRIVATE_DNS_STRICT, Warning.LOCKDOWN), Warning.current("dns.google", lockdown = true))
        assertTrue(Warning.PRIVATE_DNS_STRICT.text.contains("Private DNS"))
        assertTrue(Warning.LOCKDOWN.text.contains("Block connections without VPN"))
    }

    @Test
    fun logLine() {
        val e = QueryLogEntry(0, "example.com.", 28, 0, AnswerSource.CACHE, 1_500)
        assertEquals("example.com. AAAA NOERROR cache 1.5 ms", StatusTexts.logLine(e, f))
    }
}
