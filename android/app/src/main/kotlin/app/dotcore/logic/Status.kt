package app.dotcore.logic

import app.dotcore.ffi.EngineEvent
import app.dotcore.ffi.EngineStats
import app.dotcore.ffi.Mode
import java.util.Locale

/**
 * What the engine's events say about the server: whether one has been
 * validated (a TLS connection established, authenticated in strict mode),
 * the last failure, and whether opportunistic mode fell back to clear text.
 */
data class ServerStatus(
    /** The server of the last successful handshake, or null. */
    val validatedServer: String? = null,
    val authenticated: Boolean = false,
    /** Why the last connection attempt failed, until one succeeds. */
    val lastFailure: String? = null,
    /** The core's stable kind of [lastFailure] ("pin_mismatch", …), or null. */
    val lastFailureKind: String? = null,
    /** Why queries go out in clear text, while they do (opportunistic). */
    val cleartextReason: String? = null,
) {
    val validated: Boolean get() = validatedServer != null && lastFailure == null

    /** The status after [event]; query events leave it unchanged. */
    fun on(event: EngineEvent): ServerStatus = when (event) {
        is EngineEvent.ServerValidated -> copy(
            validatedServer = event.server,
            authenticated = event.authenticated,
            lastFailure = null,
            lastFailureKind = null,
        )
        is EngineEvent.ServerFailed -> copy(
            lastFailure = "${event.server}: ${event.reason}",
            lastFailureKind = event.kind.ifEmpty { null },
        )
        is EngineEvent.CleartextFallback -> copy(cleartextReason = event.reason)
        EngineEvent.TlsRestored -> copy(cleartextReason = null)
        EngineEvent.Started -> ServerStatus()
        EngineEvent.Stopped, is EngineEvent.Query, is EngineEvent.TunClosed -> this
    }
}

/** The counters the status screen and the notification show. */
data class StatsSummary(
    val queries: Long,
    /** Queries that got an answer from a server or the cache (not an engine-made SERVFAIL). */
    val answered: Long,
    val failures: Long,
    val cacheHits: Long,
    val cleartextQueries: Long,
    val meanLatencyMicros: Long,
    val handshakesFull: Long,
    val handshakesResumed: Long,
) {
    /** Share of queries answered from the cache, 0..1; null before the first query. */
    val cacheHitRate: Double? get() = if (queries > 0) cacheHits.toDouble() / queries else null

    companion object {
        val EMPTY = StatsSummary(0, 0, 0, 0, 0, 0, 0, 0)

        fun of(s: EngineStats) = StatsSummary(
            queries = s.queries,
            answered = (s.queries - s.failures).coerceAtLeast(0),
            failures = s.failures,
            cacheHits = s.cacheHits,
            cleartextQueries = s.cleartextQueries,
            meanLatencyMicros = s.meanLatencyMicros,
            handshakesFull = s.handshakesFull,
            handshakesResumed = s.handshakesResumed,
        )
    }
}

/** Something that breaks or weakens a DNS-only VPN, for the user to fix. */
enum class Warning(val text: String) {
    /**
     * Android's Private DNS in strict mode ("Private DNS provider host
     * name") makes the system resolver talk TLS to that host itself,
     * bypassing the DNS servers of every network, ours included: dotcore
     * sees no queries.
     */
    PRIVATE_DNS_STRICT(
        "Android's Private DNS is set to a provider host name, so apps' DNS goes to that server " +
            "and bypasses dotcore. Set Settings > Network > Private DNS to Off or Automatic.",
    ),

    /**
     * Always-on VPN with "Block connections without VPN": dotcore routes
     * only DNS into its tunnel, so lockdown blocks every other connection
     * of every app.
     */
    LOCKDOWN(
        "Always-on VPN with \"Block connections without VPN\" is on. dotcore only carries DNS, so " +
            "lockdown blocks all other traffic. Turn \"Block connections without VPN\" off in the VPN settings.",
    ),
    ;

    companion object {
        /**
         * The warnings for the current state: [privateDnsServerName] is
         * `LinkProperties.getPrivateDnsServerName()` of the default network
         * (non-null only in strict mode, API 28+), [lockdown] is
         * `VpnService.isLockdownEnabled()` (API 29+).
         */
        fun current(privateDnsServerName: String?, lockdown: Boolean): List<Warning> = buildList {
            if (!privateDnsServerName.isNullOrEmpty()) add(PRIVATE_DNS_STRICT)
            if (lockdown) add(LOCKDOWN)
        }
    }
}

/** Everything the screens show; one immutable value, replaced on change. */
data class AppStatus(
    val service: ServiceState = ServiceState.Stopped(),
    /** Display name of the server in use (provider name, host name, "network"). */
    val serverLabel: String = "",
    val mode: Mode = Mode.STRICT,
    val server: ServerStatus = ServerStatus(),
    val stats: StatsSummary = StatsSummary.EMPTY,
    val warnings: List<Warning> = emptyList(),
    /** How often the tunnel / the engine were (re)built; the instrumented tests watch these. */
    val tunnelGeneration: Int = 0,
    val engineGeneration: Int = 0,
)

/** Formats numbers for people, in one locale (the device's in the app, fixed in tests). */
class Formats(private val locale: Locale = Locale.getDefault()) {
    fun count(n: Long): String = String.format(locale, "%,d", n)

    fun percent(rate: Double?): String = if (rate == null) "–" else String.format(locale, "%.0f %%", rate * 100)

    fun millis(micros: Long): String =
        if (micros <= 0) "–" else String.format(locale, "%.1f ms", micros / 1000.0)

    fun modeName(mode: Mode): String = when (mode) {
        Mode.STRICT -> "strict"
        Mode.OPPORTUNISTIC -> "opportunistic"
    }
}

/** The text of the ongoing notification. */
data class NotificationText(val title: String, val text: String)

object StatusTexts {
    /** Title and text of the service's notification for [status]. */
    fun notification(status: AppStatus, f: Formats = Formats()): NotificationText {
        val title = "${status.serverLabel.ifEmpty { "dotcore" }} · ${f.modeName(status.mode)}"
        val text = when (val s = status.service) {
            is ServiceState.Starting -> "Starting…"
            is ServiceState.Stopped -> s.error?.let { "Stopped: $it" } ?: "Stopped"
            is ServiceState.Running -> when {
                Warning.LOCKDOWN in status.warnings -> "Lockdown blocks all non-DNS traffic. Open dotcore."
                Warning.PRIVATE_DNS_STRICT in status.warnings -> "Bypassed by Android's Private DNS. Open dotcore."
                status.server.cleartextReason != null ->
                    "${f.count(status.stats.answered)} queries answered · clear text: ${status.server.cleartextReason}"
                status.server.lastFailure != null ->
                    "${f.count(status.stats.answered)} queries answered · server failing"
                else -> {
                    val rate = status.stats.cacheHitRate
                    val cache = if (rate == null) "" else " · ${f.percent(rate)} from cache"
                    "${f.count(status.stats.answered)} queries answered$cache"
                }
            }
        }
        return NotificationText(title, text)
    }

    /** One line about the server's validation, for the status screen. */
    fun validation(status: AppStatus): String {
        val server = status.server
        return when {
            !status.service.isOn -> "Not running"
            server.cleartextReason != null -> "Clear text fallback: ${server.cleartextReason}"
            server.lastFailure != null -> "Not validated: ${server.lastFailure}"
            server.validatedServer == null -> "Not validated yet (no query sent)"
            server.authenticated -> "Validated: ${server.validatedServer} (authenticated)"
            else -> "Connected: ${server.validatedServer} (encrypted, not authenticated)"
        }
    }

    /**
     * What the user can do about the server's last failure, for the status
     * screen under [validation]; null when nothing failed or while clear
     * text stands in for it.
     */
    fun advice(status: AppStatus): String? {
        val server = status.server
        if (!status.service.isOn || server.cleartextReason != null || server.lastFailure == null) return null
        return FailureAdvice.of(server.lastFailureKind, status.mode)
    }

    /** The counter lines of the status screen. */
    fun counters(stats: StatsSummary, f: Formats = Formats()): List<String> = listOf(
        "Queries: ${f.count(stats.queries)} (${f.count(stats.failures)} failed)",
        "Cache hit rate: ${f.percent(stats.cacheHitRate)}",
        "Average latency: ${f.millis(stats.meanLatencyMicros)}",
        "TLS handshakes: ${f.count(stats.handshakesFull)} full, ${f.count(stats.handshakesResumed)} resumed",
        "Clear-text answers: ${f.count(stats.cleartextQueries)}",
    )

    /** One query-log line. */
    fun logLine(e: QueryLogEntry, f: Formats = Formats()): String =
        "${e.name} ${e.typeName} ${e.rcodeName} ${e.source.name.lowercase()} ${f.millis(e.latencyMicros)}"
}

/**
 * What to do about a server failure, by the core's stable failure kind
 * (`ServerFailureKind::as_str` in rust-core/src/failure.rs; the list is in
 * docs/kotlin-api.md). The reason itself, with the names and pins
 * involved, is on the line above it; this says which setting to look at.
 */
object FailureAdvice {
    fun of(kind: String?, mode: Mode): String {
        val blocked = if (mode == Mode.STRICT) {
            "The network may block DNS over TLS (port 853): try another network, or opportunistic mode."
        } else {
            "The network may block DNS over TLS (port 853); dotcore keeps trying it."
        }
        return when (kind) {
            "certificate_name_mismatch" ->
                "Check the server name in Settings: it must be a name the server's certificate lists."
            "pin_mismatch" ->
                "Update the pin in Settings: the server's key is not one of the pinned ones " +
                    "(it may have changed its key; the pin it presented is above)."
            "certificate_expired" ->
                "Check the phone's date and time. If they are right, the server's certificate has expired: " +
                    "tell the server's operator."
            "certificate_not_yet_valid" ->
                "Check the phone's date and time: the server's certificate is not valid yet."
            "certificate_untrusted" ->
                "The certificate is not from a CA this phone trusts: add the server's CA certificate " +
                    "in Settings, or pin the server's key."
            "certificate_is_ca", "certificate_wrong_purpose", "certificate_invalid" ->
                "The server's certificate is not one for a TLS server: fix the certificate on the server, " +
                    "or add it as the CA certificate in Settings if it is self-signed."
            "tls_version" ->
                "The server only offers TLS older than 1.2, which is not safe: update the server or pick another."
            "tls_alert", "protocol_error" ->
                "Check that the address and port in Settings are those of a DNS-over-TLS server."
            "connection_refused" ->
                "Nothing accepts DNS over TLS at that address: check the address and port (853 by default)."
            "connect_timed_out", "network_unreachable", "connect_failed" -> blocked
            "answer_timed_out", "connection_lost" ->
                "The server stopped answering: it may be overloaded. Try again later or pick another server."
            else -> "Check the server in Settings."
        }
    }
}
