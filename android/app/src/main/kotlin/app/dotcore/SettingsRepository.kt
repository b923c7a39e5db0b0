package app.dotcore

import android.content.Context
import app.dotcore.logic.Settings
import app.dotcore.logic.SettingsCodec

/** [Settings] in SharedPreferences (the mapping is [SettingsCodec]'s). */
class SettingsRepository(context: Context) {
    private val prefs = context.applicationContext.getSharedPreferences(FILE, Context.MODE_PRIVATE)

    fun load(): Settings = SettingsCodec.decode(prefs.all)

    /** Writes synchronously: the service reads the file right after. */
    fun save(settings: Settings) {
        val editor = prefs.edit().clear()
        for ((key, value) in SettingsCodec.encode(settings)) {
            when (value) {
                is String -> editor.putString(key, value)
                is Boolean -> editor.putBoolean(key, value)
                is Int -> editor.putInt(key, value)
                is Set<*> -> editor.putStringSet(key, value.filterIsInstance<String>().toSet())
                else -> error("unsupported preference type for $key")
            }
        }
        editor.commit()
    }

    private companion object {
        const val FILE = "settings"
    }
}
