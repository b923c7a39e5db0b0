package app.dotcore.robo

import android.app.Activity
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.app.Notification
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.FrameLayout
import android.widget.RadioButton
import android.widget.TextView
import app.dotcore.Notifications
import app.dotcore.SettingsActivity
import app.dotcore.SettingsRepository
import app.dotcore.logic.Settings
import app.dotcore.logic.StatusTexts
import app.dotcore.MainActivity
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import java.io.File

/** Screens rendered with Robolectric's native graphics (real Skia) to PNGs under target/screenshots/. */
@RunWith(RobolectricTestRunner::class)
class ScreenshotTest {
    @Test
    fun `the status screen, off`() {
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        val png = capture(activity, "main-off")
        assertTrue(png.length() > 0)
    }

    @Test
    fun `the settings screen, providers and a custom server with a field error`() {
        SettingsRepository(app).save(Settings())
        val activity = Robolectric.buildActivity(SettingsActivity::class.java).setup().get()
        capture(activity, "settings-providers")
        val root = activity.window.decorView
        root.all(RadioButton::class.java).first { it.text.startsWith("Custom server") }.performClick()
        root.all(EditText::class.java).first { it.hint.startsWith("Host name") }.setText("dns.example.net")
        root.all(EditText::class.java).first { it.hint.startsWith("Addresses") }.setText("300.1.2.3")
        root.all(Button::class.java).first { it.text == "Save" }.performClick()
        capture(activity, "settings-custom-error")
    }

    @Test
    fun `the ongoing notification`() {
        val text = StatusTexts.notification(status)
        val n = Notifications.ongoing(app, text)
        val view = Notification.Builder.recoverBuilder(app, n).createBigContentView().apply(app, FrameLayout(app))
        val width = app.resources.displayMetrics.widthPixels
        view.measure(
            View.MeasureSpec.makeMeasureSpec(width, View.MeasureSpec.EXACTLY),
            View.MeasureSpec.makeMeasureSpec(0, View.MeasureSpec.UNSPECIFIED),
        )
        view.layout(0, 0, width, view.measuredHeight)
        assertTrue(view.all(TextView::class.java).any { it.text.toString() == text.title })
        val png = drawToPng(view, "notification")
        assertTrue(png.length() > 0)
    }

    companion object {
        /** Draws the activity's window into a PNG; fails if nothing but background was drawn. */
        fun capture(activity: Activity, name: String): File {
            awaitUntil("laid out") { activity.window.decorView.width > 0 }
            return drawToPng(activity.window.decorView, name)
        }

        fun drawToPng(root: View, name: String): File {
            val bitmap = Bitmap.createBitmap(root.width, root.height, Bitmap.Config.ARGB_8888)
            bitmap.eraseColor(Color.WHITE)
            root.draw(Canvas(bitmap))
            val background = bitmap.getPixel(0, 0)
            var differing = 0
            for (y in 0 until bitmap.height step 4) for (x in 0 until bitmap.width step 4) {
                if (bitmap.getPixel(x, y) != background) differing++
            }
            assertTrue("$name: the screen rendered blank", differing > 50)
            val dir = File(System.getProperty("dotcore.screenshots") ?: "target/screenshots").apply { mkdirs() }
            val file = File(dir, "$name.png")
            file.outputStream().use { bitmap.compress(Bitmap.CompressFormat.PNG, 100, it) }
            return file
        }
    }
}
