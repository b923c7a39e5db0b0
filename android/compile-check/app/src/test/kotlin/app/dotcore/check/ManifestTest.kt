package app.dotcore.check

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.w3c.dom.Element
import java.io.File
import javax.xml.parsers.DocumentBuilderFactory

/**
 * What aapt2 and the Android build would catch in the manifest, checked
 * without them: every component it names is a compiled class of the right
 * framework type, the VPN service is declared the way Android requires,
 * every resource it refers to exists, and the Gradle test runner is a real
 * Instrumentation. The classes come from this module's compilation of the
 * app's sources against android-all.
 *
 * android-all's class files are Java 21 (version 65) and this JVM may be
 * 17, so classes are never loaded: [ClassFiles] reads the superclass chain
 * straight from the class files on the test class path.
 */
class ManifestTest {
    private val appDir = File(System.getProperty("dotcore.app.dir") ?: error("dotcore.app.dir not set"))
    private val manifestFile = appDir.resolve("src/main/AndroidManifest.xml")
    private val manifest: Element = DocumentBuilderFactory.newInstance()
        .apply { isNamespaceAware = true }
        .newDocumentBuilder()
        .parse(manifestFile)
        .documentElement

    private val namespace = "app.dotcore"
    private val androidNs = "http://schemas.android.com/apk/res/android"

    private fun Element.attr(name: String): String = getAttributeNS(androidNs, name)

    private fun Element.children(tag: String): List<Element> {
        val nodes = getElementsByTagName(tag)
        return (0 until nodes.length).map { nodes.item(it) as Element }
    }

    private fun className(name: String) = if (name.startsWith(".")) namespace + name else name

    private val classes = ClassFiles(javaClass.classLoader)

    private fun assertSubclass(component: String, base: String) {
        val name = className(component)
        assertTrue(classes.exists(name), "$name (named in the manifest) was not compiled")
        val chain = classes.superclasses(name)
        assertTrue(base in chain, "$name must extend $base; its superclasses: $chain")
    }

    private val application: Element get() = manifest.children("application").single()

    private fun component(tag: String, name: String): Element =
        application.children(tag).singleOrNull { it.attr("name") == name }
            ?: error("no <$tag android:name=\"$name\"> in $manifestFile")

    private fun metaData(e: Element): Map<String, String> =
        e.children("meta-data").associate { it.attr("name") to it.attr("value") }

    private fun actions(e: Element): Set<String> =
        e.children("intent-filter").flatMap { f -> f.children("action").map { it.attr("name") } }.toSet()

    private val permissions: Set<String>
        get() = manifest.children("uses-permission").map { it.attr("name") }.toSet()

    @Test
    fun everyComponentIsACompiledClassOfTheRightType() {
        assertSubclass(application.attr("name"), "android.app.Application")
        val expected = mapOf(
            "activity" to "android.app.Activity",
            "service" to "android.app.Service",
            "receiver" to "android.content.BroadcastReceiver",
        )
        var count = 0
        for ((tag, base) in expected) {
            for (e in application.children(tag)) {
                assertSubclass(e.attr("name"), base)
                count++
            }
        }
        assertEquals(5, count, "MainActivity, SettingsActivity, DotVpnService, DotTileService, BootReceiver")
        val launcher = application.children("activity").single { "android.intent.action.MAIN" in actions(it) }
        assertEquals("true", launcher.attr("exported"))
    }

    @Test
    fun theVpnServiceIsDeclaredAsAndroidRequires() {
        val vpn = component("service", ".DotVpnService")
        assertSubclass(".DotVpnService", "android.net.VpnService")
        assertEquals("android.permission.BIND_VPN_SERVICE", vpn.attr("permission"))
        assertTrue("android.net.VpnService" in actions(vpn), "intent filter android.net.VpnService")
        assertEquals("true", metaData(vpn)["android.net.VpnService.SUPPORTS_ALWAYS_ON"])
        // Android 14+: a foreground service needs a type and its permission.
        assertEquals("systemExempted", vpn.attr("foregroundServiceType"))
        assertTrue("android.permission.FOREGROUND_SERVICE_SYSTEM_EXEMPTED" in permissions)
        assertTrue("android.permission.FOREGROUND_SERVICE" in permissions)
        assertTrue("android.permission.POST_NOTIFICATIONS" in permissions)
        assertTrue("android.permission.INTERNET" in permissions)
        assertTrue("android.permission.ACCESS_NETWORK_STATE" in permissions)
    }

    @Test
    fun theTileAndTheBootReceiverAreWiredUp() {
        val tile = component("service", ".DotTileService")
        assertSubclass(".DotTileService", "android.service.quicksettings.TileService")
        assertEquals("android.permission.BIND_QUICK_SETTINGS_TILE", tile.attr("permission"))
        assertTrue("android.service.quicksettings.action.QS_TILE" in actions(tile))
        assertTrue(tile.attr("icon").isNotEmpty(), "a tile needs an icon")
        val boot = component("receiver", ".BootReceiver")
        assertTrue("android.intent.action.BOOT_COMPLETED" in actions(boot))
        assertTrue("android.permission.RECEIVE_BOOT_COMPLETED" in permissions)
    }

    @Test
    fun everyResourceTheManifestNamesExists() {
        val res = appDir.resolve("src/main/res")
        val strings = res.walkTopDown().filter { it.isFile && it.parentFile.name.startsWith("values") }
            .flatMap { Regex("""<string\s+name="([^"]+)"""").findAll(it.readText()).map { m -> m.groupValues[1] } }
            .toSet()
        val references = Regex("""@(string|drawable|mipmap)/([A-Za-z0-9_]+)""")
            .findAll(manifestFile.readText())
            .map { it.groupValues[1] to it.groupValues[2] }
            .toList()
        assertTrue(references.size >= 4, "the manifest names its label, icon and tile resources: $references")
        for ((type, name) in references) {
            val found = when (type) {
                "string" -> name in strings
                else -> res.listFiles().orEmpty().any { dir ->
                    dir.name.substringBefore('-') == type && dir.listFiles().orEmpty().any { it.nameWithoutExtension == name }
                }
            }
            assertTrue(found, "@$type/$name is referenced by the manifest but not in $res")
        }
    }

    @Test
    fun theGradleTestRunnerIsAnInstrumentation() {
        val gradle = appDir.resolve("build.gradle.kts").readText()
        val runner = Regex("""testInstrumentationRunner\s*=\s*"([^"]+)"""").find(gradle)?.groupValues?.get(1)
            ?: error("no testInstrumentationRunner in build.gradle.kts")
        assertSubclass(runner, "android.app.Instrumentation")
    }
}
