package app.dotcore.robo

import android.app.Activity
import android.app.Notification
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.drawable.ColorDrawable
import android.graphics.drawable.GradientDrawable
import android.os.Looper
import android.view.View
import android.widget.Button
import android.widget.CompoundButton
import android.widget.EditText
import android.widget.FrameLayout
import android.widget.RadioButton
import android.widget.TextView
import app.dotcore.MainActivity
import app.dotcore.Notifications
import app.dotcore.SettingsActivity
import app.dotcore.SettingsRepository
import app.dotcore.logic.Settings
import app.dotcore.logic.StatusTexts
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import java.io.File
import java.time.Duration

/**
 * Screens rendered with Robolectric's native graphics (real Skia) to PNGs
 * under the repository's target/screenshots/, in the light and the dark
 * theme, with what they show checked: readable contrast, the right radio
 * button drawn as checked.
 */
@RunWith(RobolectricTestRunner::class)
class ScreenshotTest {
    @Test
    fun `the status screen, off`() {
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        val png = capture(activity, "main-off")
        assertTrue(png.length() > 0)
        assertReadable(activity.window.decorView, dark = false)
    }

    @Test
    fun `the status screen in the dark theme`() {
        RuntimeEnvironment.setQualifiers("+night")
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        val bitmap = render(activity)
        assertTrue("the background is dark", luminance(bitmap.getPixel(bitmap.width / 2, bitmap.height - 10)) < 0.05)
        save(bitmap, "main-dark")
        assertReadable(activity.window.decorView, dark = true)
    }

    @Test
    fun `the settings screen in the dark theme`() {
        RuntimeEnvironment.setQualifiers("+night")
        SettingsRepository(app).save(Settings())
        val activity = Robolectric.buildActivity(SettingsActivity::class.java).setup().get()
        save(render(activity), "settings-dark")
        assertReadable(activity.window.decorView, dark = true)
    }

    @Test
    fun `the settings screen, providers and a custom server with a field error`() {
        SettingsRepository(app).save(Settings())
        val activity = Robolectric.buildActivity(SettingsActivity::class.java).setup().get()
        capture(activity, "settings-providers")
        assertReadable(activity.window.decorView, dark = false)
        val root = activity.window.decorView
        val radios = root.all(RadioButton::class.java)
        val cloudflare = radios.first { it.text.startsWith("Cloudflare") }
        val custom = radios.first { it.text.startsWith("Custom server") }
        custom.performClick()
        root.all(EditText::class.java).first { it.hint.startsWith("Host name") }.setText("dns.example.net")
        root.all(EditText::class.java).first { it.hint.startsWith("Addresses") }.setText("300.1.2.3")
        root.all(Button::class.java).first { it.text == "Save" }.performClick()
        assertTrue("the custom server is the checked choice", custom.isChecked)
        assertFalse("and Cloudflare is not", cloudflare.isChecked)
        val bitmap = render(activity)
        save(bitmap, "settings-custom-error")
        // What the picture shows, not only the state: the checked radio has
        // its dot, the others none (an unfinished check animation once drew
        // the dot in the radio that had just lost it).
        assertTrue("the custom server's radio is drawn checked", dotDrawn(bitmap, custom))
        assertFalse("Cloudflare's radio is drawn unchecked", dotDrawn(bitmap, cloudflare))
        for (r in radios.filter { it.isShown && it !== custom && it.parent === custom.parent }) {
            assertFalse("${r.text.lines().first()} is drawn unchecked", dotDrawn(bitmap, r))
        }
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
        fun capture(activity: Activity, name: String): File = save(render(activity), name)

        /**
         * The window as the user sees it once it settled: laid out, and the
         * drawables' state transitions (a radio's or switch's check) at
         * their end. Robolectric never advances those animated vector
         * transitions, clock or not: drawn as they are, a radio that was just
         * unchecked keeps its dot and the newly checked one has none.
         */
        fun render(activity: Activity): Bitmap {
            awaitUntil("laid out") { activity.window.decorView.width > 0 }
            shadowOf(Looper.getMainLooper()).idleFor(Duration.ofMillis(500))
            activity.window.decorView.jumpDrawablesToCurrentState()
            return draw(activity.window.decorView)
        }

        fun drawToPng(root: View, name: String): File = save(draw(root), name)

        private fun draw(root: View): Bitmap {
            val bitmap = Bitmap.createBitmap(root.width, root.height, Bitmap.Config.ARGB_8888)
            bitmap.eraseColor(Color.WHITE)
            root.draw(Canvas(bitmap))
            return bitmap
        }

        fun save(bitmap: Bitmap, name: String): File {
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

        /** Whether the centre of [radio]'s circle, as drawn in [bitmap], has the dot. */
        private fun dotDrawn(bitmap: Bitmap, radio: CompoundButton): Boolean {
            val button = radio.buttonDrawable!!.bounds
            val at = IntArray(2).also { radio.getLocationInWindow(it) }
            val centre = bitmap.getPixel(at[0] + button.centerX(), at[1] + button.centerY())
            return contrast(centre, backgroundOf(radio)) > 1.5
        }

        /** WCAG relative luminance of an opaque colour, 0..1. */
        fun luminance(c: Int): Double {
            fun ch(v: Int): Double = (v / 255.0).let { if (it <= 0.03928) it / 12.92 else Math.pow((it + 0.055) / 1.055, 2.4) }
            return 0.2126 * ch(Color.red(c)) + 0.7152 * ch(Color.green(c)) + 0.0722 * ch(Color.blue(c))
        }

        fun contrast(a: Int, b: Int): Double {
            val (hi, lo) = listOf(luminance(a), luminance(b)).sortedDescending()
            return (hi + 0.05) / (lo + 0.05)
        }

        /** The colour [v] is drawn on: its own background or the nearest ancestor's, else the window's. */
        fun backgroundOf(v: View): Int {
            var at: View? = v
            while (at != null) {
                when (val bg = at.background) {
                    is ColorDrawable -> if (Color.alpha(bg.color) == 255) return bg.color
                    is GradientDrawable -> bg.color?.defaultColor?.let { if (Color.alpha(it) == 255) return it }
                }
                if (at is Button) at.backgroundTintList?.defaultColor?.let { return it }
                at = at.parent as? View
            }
            error("no opaque background behind $v")
        }

        /**
         * Every text on screen (labels, inputs, hints, buttons, choices) has
         * at least WCAG AA's 4.5:1 against what it is drawn on, and the
         * window is the theme's: light by day, dark at night.
         */
        fun assertReadable(root: View, dark: Boolean) {
            val window = (root.background as ColorDrawable).color
            assertEquals("window background dark=$dark", dark, luminance(window) < 0.2)
            val texts = root.all(TextView::class.java).filter { it.isShown }
            assertTrue("texts to check", texts.size >= 5)
            for (t in texts) {
                val bg = backgroundOf(t)
                val label = t.text.toString().ifEmpty { t.hint?.toString().orEmpty() }.lines().first()
                val fg = if (t.text.isEmpty() && t.hint != null) t.currentHintTextColor else t.currentTextColor
                val ratio = contrast(fg, bg)
                assertTrue(
                    "\"$label\": contrast %.2f:1 of #%08X on #%08X is below 4.5:1".format(ratio, fg, bg),
                    ratio >= 4.5,
                )
            }
        }
    }
}
