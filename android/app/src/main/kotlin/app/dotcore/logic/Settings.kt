package app.dotcore.logic

import app.dotcore.ffi.Mode

/**
 * What the user picked as upstream. Stored as text (see [SettingsCodec]).
 */
sealed interface ServerChoice {
    /** A built-in provider of the core's catalogue (`providers()`), by id. */
    data class Provider(val id: String) : ServerChoice

    /** The user's own server ([Settings.custom]). */
    data object Custom : ServerChoice

    /**
     * No server of our own: opportunistic DoT to the network's resolvers
     * (only valid in opportunistic mode; the core says so otherwise).
     */
    data object NetworkResolvers : ServerChoice
}

/**
 * The custom server as typed: the settings screen keeps the text, the
 * core judges it (see [EngineConfigs]). Lists are separated by commas,
 * spaces or new lines.
 */
data class CustomServerInput(
    /** Authentication name (TLS name); may be blank when pins are given. */
    val hostname: String = "",
    /** `IP`, `IP:PORT` or `[IPv6]:PORT`, one or more. */
    val addresses: String = "",
    /** Port for addresses without one; blank means 853. */
    val port: String = "",
    /** SPKI pins (base64 SHA-256), zero or more. */
    val pins: String = "",
    /**
     * CA certificates (PEM) to trust for this server beside the system's:
     * a private CA, or a self-signed server certificate itself
     * (`openssl req -x509`). Blank for none.
     */
    val caPem: String = "",
)

/** Everything the user can set. Defaults are what a fresh install uses. */
data class Settings(
    val server: ServerChoice = ServerChoice.Provider(DEFAULT_PROVIDER_ID),
    /** Per-user configuration ID for providers that need one (NextDNS). */
    val configId: String = "",
    val custom: CustomServerInput = CustomServerInput(),
    val mode: Mode = Mode.STRICT,
    /** Packages whose traffic does not go through the tunnel. */
    val excludedApps: Set<String> = emptySet(),
    val startOnBoot: Boolean = false,
    /** Keep the last [QueryLog.DEFAULT_CAPACITY] queries in memory. */
    val queryLog: Boolean = false,
) {
    companion object {
        /** The core's default provider (first in `providers()`; a test checks). */
        const val DEFAULT_PROVIDER_ID = "cloudflare"
    }
}

/**
 * Settings to and from a flat key/value map, the shape of
 * `SharedPreferences.getAll()` and `SharedPreferences.Editor`. Unknown or
 * malformed values fall back to the defaults instead of failing: a
 * corrupted preference file must not keep the app from starting.
 */
object SettingsCodec {
    const val VERSION = 1

    private const val K_VERSION = "version"
    private const val K_SERVER = "server"
    private const val K_CONFIG_ID = "config_id"
    private const val K_CUSTOM_HOSTNAME = "custom_hostname"
    private const val K_CUSTOM_ADDRESSES = "custom_addresses"
    private const val K_CUSTOM_PORT = "custom_port"
    private const val K_CUSTOM_PINS = "custom_pins"
    private const val K_CUSTOM_CA = "custom_ca_pem"
    private const val K_MODE = "mode"
    private const val K_EXCLUDED = "excluded_apps"
    private const val K_BOOT = "start_on_boot"
    private const val K_QUERY_LOG = "query_log"

    private const val PROVIDER_PREFIX = "provider:"
    private const val CUSTOM = "custom"
    private const val NETWORK = "network"

    fun serverToText(choice: ServerChoice): String = when (choice) {
        is ServerChoice.Provider -> PROVIDER_PREFIX + choice.id
        ServerChoice.Custom -> CUSTOM
        ServerChoice.NetworkResolvers -> NETWORK
    }

    fun serverFromText(text: String?): ServerChoice? = when {
        text == null -> null
        text == CUSTOM -> ServerChoice.Custom
        text == NETWORK -> ServerChoice.NetworkResolvers
        text.startsWith(PROVIDER_PREFIX) && text.length > PROVIDER_PREFIX.length ->
            ServerChoice.Provider(text.removePrefix(PROVIDER_PREFIX))
        else -> null
    }

    /** The map to write (every key, so a write replaces the whole state). */
    fun encode(s: Settings): Map<String, Any> = mapOf(
        K_VERSION to VERSION,
        K_SERVER to serverToText(s.server),
        K_CONFIG_ID to s.configId,
        K_CUSTOM_HOSTNAME to s.custom.hostname,
        K_CUSTOM_ADDRESSES to s.custom.addresses,
        K_CUSTOM_PORT to s.custom.port,
        K_CUSTOM_PINS to s.custom.pins,
        K_CUSTOM_CA to s.custom.caPem,
        K_MODE to s.mode.name,
        K_EXCLUDED to s.excludedApps.toSet(),
        K_BOOT to s.startOnBoot,
        K_QUERY_LOG to s.queryLog,
    )

    fun decode(map: Map<String, *>): Settings {
        val d = Settings()
        fun str(key: String, default: String) = map[key] as? String ?: default
        fun bool(key: String, default: Boolean) = map[key] as? Boolean ?: default
        return Settings(
            server = serverFromText(map[K_SERVER] as? String) ?: d.server,
            configId = str(K_CONFIG_ID, d.configId),
            custom = CustomServerInput(
                hostname = str(K_CUSTOM_HOSTNAME, ""),
                addresses = str(K_CUSTOM_ADDRESSES, ""),
                port = str(K_CUSTOM_PORT, ""),
                pins = str(K_CUSTOM_PINS, ""),
                caPem = str(K_CUSTOM_CA, ""),
            ),
            mode = Mode.entries.firstOrNull { it.name == map[K_MODE] } ?: d.mode,
            excludedApps = (map[K_EXCLUDED] as? Set<*>)?.filterIsInstance<String>()?.toSet() ?: d.excludedApps,
            startOnBoot = bool(K_BOOT, d.startOnBoot),
            queryLog = bool(K_QUERY_LOG, d.queryLog),
        )
    }
}
