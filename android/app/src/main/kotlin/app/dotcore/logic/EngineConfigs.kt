package app.dotcore.logic

import app.dotcore.ffi.CustomServer
import app.dotcore.ffi.DotException
import app.dotcore.ffi.EngineConfig
import app.dotcore.ffi.Provider
import app.dotcore.ffi.Upstream
import app.dotcore.ffi.validateConfig

/** The inputs of the settings screen an error can be shown next to. */
enum class SettingsField {
    SERVER,
    CONFIG_ID,
    CUSTOM_HOSTNAME,
    CUSTOM_ADDRESSES,
    CUSTOM_PORT,
    CUSTOM_PINS,
    CUSTOM_CA,
    MODE,
    /** A setting the screen does not show (cache, timeouts): shown at the top. */
    OTHER,
}

/**
 * A rejected setting: [field] picks the input, [message] is for people,
 * [coreField] is the core's path of the setting (`servers[0].pins[1]`),
 * null when the app rejected the input before the core saw it.
 */
data class FieldError(val field: SettingsField, val message: String, val coreField: String?)

/** [Settings] as the engine's [EngineConfig], and the core's verdict on it. */
object EngineConfigs {
    sealed interface Result {
        data class Ok(val config: EngineConfig) : Result
        data class Invalid(val error: FieldError) : Result
    }

    /** Splits a typed list on commas, semicolons and white space. */
    fun splitList(text: String): List<String> =
        text.split(',', ';', ' ', '\t', '\n', '\r').map(String::trim).filter(String::isNotEmpty)

    /**
     * The engine configuration for [settings]. Only what the core cannot
     * see is checked here (a port that is not a number at all); everything
     * else is the core's job ([validate]). [networkResolvers] are the
     * current network's DNS servers, for opportunistic mode.
     */
    fun toEngineConfig(settings: Settings, networkResolvers: List<String> = emptyList()): Result {
        val upstream = when (val s = settings.server) {
            is ServerChoice.Provider -> Upstream.Provider(
                id = s.id,
                configId = settings.configId.trim().ifEmpty { null },
            )
            ServerChoice.NetworkResolvers -> Upstream.NetworkResolvers
            ServerChoice.Custom -> {
                val c = settings.custom
                val portText = c.port.trim()
                val port = if (portText.isEmpty()) 0 else portText.toIntOrNull()
                    ?: return Result.Invalid(
                        FieldError(SettingsField.CUSTOM_PORT, "\"$portText\" is not a port number (1-65535; empty means 853)", null),
                    )
                Upstream.Custom(
                    listOf(
                        CustomServer(
                            name = c.hostname.trim().ifEmpty { null },
                            addresses = splitList(c.addresses),
                            port = port,
                            pins = splitList(c.pins),
                        ),
                    ),
                )
            }
        }
        // Only the custom server's: a provider is checked against the
        // system's CAs alone, whatever is left in the hidden custom form.
        val extraCa = settings.custom.caPem.trim()
            .takeIf { settings.server == ServerChoice.Custom && it.isNotEmpty() }
        return Result.Ok(
            EngineConfig(
                upstream = upstream,
                mode = settings.mode,
                extraCaPem = extraCa,
                queryLog = settings.queryLog,
                networkResolvers = networkResolvers,
            ),
        )
    }

    /**
     * Asks the core (`validateConfig`) whether [settings] would start an
     * engine; null when they would, else the error placed on its input.
     */
    fun validate(settings: Settings): FieldError? =
        when (val r = toEngineConfig(settings)) {
            is Result.Invalid -> r.error
            is Result.Ok -> try {
                validateConfig(r.config)
                null
            } catch (e: DotException.InvalidConfig) {
                fieldError(e.field, e.reason, settings)
            }
        }

    private val serverPart = Regex("""servers\[(\d+)]\.(addresses|name|port|pins)(?:\[(\d+)])?""")

    /** Places the core's error for setting [coreField] on an input. */
    fun fieldError(coreField: String, reason: String, settings: Settings): FieldError {
        val m = serverPart.matchEntire(coreField)
        val field = when {
            coreField == "provider" -> SettingsField.SERVER
            coreField == "config_id" -> SettingsField.CONFIG_ID
            // "no server given": with the network's resolvers in strict mode
            // it is the mode that is wrong, not a server input.
            coreField == "servers" ->
                if (settings.server == ServerChoice.NetworkResolvers) SettingsField.MODE else SettingsField.CUSTOM_ADDRESSES
            coreField.startsWith("network_resolvers") -> SettingsField.MODE
            coreField == "extra_ca" -> SettingsField.CUSTOM_CA
            m != null -> when (m.groupValues[2]) {
                "addresses" -> SettingsField.CUSTOM_ADDRESSES
                "name" -> SettingsField.CUSTOM_HOSTNAME
                "port" -> SettingsField.CUSTOM_PORT
                else -> SettingsField.CUSTOM_PINS
            }
            else -> SettingsField.OTHER
        }
        val message = when {
            field == SettingsField.MODE && coreField == "servers" ->
                "The network's own resolvers can only be used in opportunistic mode ($reason)"
            m != null && m.groupValues[2] == "pins" && m.groupValues[3].isNotEmpty() ->
                "Pin ${m.groupValues[3].toInt() + 1}: $reason"
            field == SettingsField.OTHER -> "$coreField: $reason"
            else -> reason
        }
        return FieldError(field, message, coreField)
    }

    /**
     * What a settings change needs from a running service: nothing, a new
     * engine on the same tunnel, or a new tunnel (the app exclusions are
     * part of the tunnel's configuration, everything else the engine's).
     */
    enum class ApplyPlan { NOTHING, RESTART_ENGINE, REBUILD_TUNNEL }

    fun applyPlan(old: Settings, new: Settings): ApplyPlan = when {
        old.excludedApps != new.excludedApps -> ApplyPlan.REBUILD_TUNNEL
        // Compare what the engine would be given, so edits the engine never
        // sees (the custom server while a provider is selected, start on
        // boot) leave it alone.
        toEngineConfig(old) != toEngineConfig(new) -> ApplyPlan.RESTART_ENGINE
        else -> ApplyPlan.NOTHING
    }

    /**
     * The name to show for the server of [settings]: the provider's name
     * from [catalogue] (the core's `providers()`), the custom server's host
     * name or first address, or "Network's resolvers".
     */
    fun serverLabel(settings: Settings, catalogue: List<Provider>): String = when (val s = settings.server) {
        is ServerChoice.Provider -> catalogue.firstOrNull { it.id == s.id }?.displayName ?: s.id
        ServerChoice.Custom -> settings.custom.hostname.trim().ifEmpty { null }
            ?: splitList(settings.custom.addresses).firstOrNull()
            ?: "Custom server"
        ServerChoice.NetworkResolvers -> "Network's resolvers"
    }
}
