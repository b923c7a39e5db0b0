package app.dotcore

import android.app.PendingIntent
import android.content.ComponentName
import android.content.Context
import android.content.Intent
import android.net.VpnService
import android.os.Build
import android.service.quicksettings.Tile
import android.service.quicksettings.TileService
import android.util.Log
import app.dotcore.logic.StatusHub

/** The Quick Settings tile: on/off, with the server as subtitle. */
class DotTileService : TileService() {
    override fun onStartListening() {
        render()
    }

    override fun onClick() {
        val on = StatusHub.DEFAULT.status.value.service.isOn
        when {
            on -> DotVpnService.stop(this)
            // The consent dialog needs an activity: the app's, told to turn
            // the VPN on, which asks for it.
            VpnService.prepare(this) != null -> openApp()
            else -> try {
                DotVpnService.start(this)
            } catch (e: IllegalStateException) {
                // ForegroundServiceStartNotAllowedException on a device that
                // does not count a tile click as a user interaction.
                Log.w("dotcore", "tile could not start the service", e)
                openApp()
            }
        }
    }

    private fun render() {
        val tile = qsTile ?: return
        val status = StatusHub.DEFAULT.status.value
        tile.state = if (status.service.isOn) Tile.STATE_ACTIVE else Tile.STATE_INACTIVE
        tile.label = "Private DNS"
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
            tile.subtitle = if (status.service.isOn) status.serverLabel else "Off"
        }
        tile.updateTile()
    }

    private fun openApp() {
        val intent = Intent(this, MainActivity::class.java)
            .setAction(MainActivity.ACTION_TURN_ON)
            .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.UPSIDE_DOWN_CAKE) {
            startActivityAndCollapse(
                PendingIntent.getActivity(this, 0, intent, PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT),
            )
        } else {
            @Suppress("DEPRECATION")
            startActivityAndCollapse(intent)
        }
    }

    companion object {
        /** Asks the system to bind the tile so it shows the new state. */
        fun requestUpdate(context: Context) {
            requestListeningState(context, ComponentName(context, DotTileService::class.java))
        }
    }
}
