package app.dotcore.logic

import app.dotcore.ffi.NetworkInfo
import kotlinx.coroutines.ExperimentalCoroutinesApi
import kotlinx.coroutines.test.advanceTimeBy
import kotlinx.coroutines.test.runCurrent
import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

@OptIn(ExperimentalCoroutinesApi::class)
class NetworkChangesTest {
    private val wifi = NetworkSnapshot(handle = 100, dnsServers = listOf("192.168.1.1"), metered = false, validated = true)
    private val cell = NetworkSnapshot(handle = 200, dnsServers = listOf("10.0.0.1", "2001:db8::53"), metered = true, validated = true)

    @Test
    fun linkLocalServersWithAZoneAreDroppedOthersCleaned() {
        assertEquals(
            listOf("192.168.1.1", "2001:db8::1"),
            DnsServers.usable(listOf(" 192.168.1.1 ", "fe80::1%wlan0", "FE80::2%2", "2001:db8::1%3", "", "192.168.1.1")),
        )
        assertEquals(listOf("fd00::1"), DnsServers.usable(listOf("fd00::1")))
    }

    @Test
    fun theEngineGetsUsableServersAndTheFlags() {
        val s = cell.copy(dnsServers = listOf("fe80::1%rmnet0", "10.0.0.1"), validated = false)
        assertEquals(NetworkInfo(listOf("10.0.0.1"), metered = true, validated = false), s.toNetworkInfo())
    }

    @Test
    fun whatCountsAsAChangeForTheEngine() {
        assertTrue(wifi.differsForEngine(null))
        assertTrue(cell.differsForEngine(wifi), "another network")
        assertTrue(wifi.copy(dnsServers = listOf("192.168.1.2")).differsForEngine(wifi), "other DNS servers")
        assertTrue(wifi.differsForEngine(wifi.copy(validated = false)), "captive portal passed")
        assertFalse(wifi.copy(validated = false).differsForEngine(wifi), "losing validation")
        assertFalse(wifi.copy(metered = true).differsForEngine(wifi), "metered flip")
        assertFalse(wifi.copy(dnsServers = listOf("192.168.1.1", "fe80::1%wlan0")).differsForEngine(wifi), "unusable server added")
        assertFalse(wifi.copy(privateDnsServerName = "dns.google").differsForEngine(wifi), "Private DNS is a warning, not an engine change")
    }

    @Test
    fun aBurstOfCallbacksIsDeliveredOnceAfterTheQuietPeriod() = runTest {
        val delivered = mutableListOf<NetworkSnapshot>()
        val d = NetworkChangeDebouncer(backgroundScope, quietMillis = 1_000) { delivered += it }
        // A switch to cellular: onAvailable, capabilities, link properties...
        d.submit(cell.copy(validated = false))
        advanceTimeBy(300)
        d.submit(cell.copy(validated = false, dnsServers = listOf("10.0.0.1")))
        advanceTimeBy(300)
        d.submit(cell)
        advanceTimeBy(999)
        runCurrent()
        assertTrue(delivered.isEmpty(), "nothing before the network settled")
        advanceTimeBy(2)
        runCurrent()
        assertEquals(listOf(cell), delivered)
        assertEquals(cell, d.current)
    }

    @Test
    fun repeatsAndInsignificantChangesAreNotDelivered() = runTest {
        val delivered = mutableListOf<NetworkSnapshot>()
        val d = NetworkChangeDebouncer(backgroundScope, quietMillis = 500) { delivered += it }
        d.submit(wifi)
        advanceTimeBy(600)
        d.submit(wifi.copy(metered = true))
        advanceTimeBy(600)
        d.submit(wifi)
        advanceTimeBy(600)
        assertEquals(listOf(wifi), delivered)
        d.submit(cell)
        advanceTimeBy(600)
        assertEquals(listOf(wifi, cell), delivered)
    }

    @Test
    fun aNetworkTheEngineWasCreatedWithIsNotDeliveredAgain() = runTest {
        val delivered = mutableListOf<NetworkSnapshot>()
        val d = NetworkChangeDebouncer(backgroundScope, quietMillis = 500) { delivered += it }
        d.markDelivered(wifi)
        d.submit(wifi)
        advanceTimeBy(600)
        assertTrue(delivered.isEmpty())
    }

    @Test
    fun losingTheNetworkCancelsAPendingDeliveryAndTheNextNetworkIsAChange() = runTest {
        val delivered = mutableListOf<NetworkSnapshot>()
        val d = NetworkChangeDebouncer(backgroundScope, quietMillis = 500) { delivered += it }
        d.submit(wifi)
        advanceTimeBy(600)
        d.submit(cell)
        advanceTimeBy(100)
        d.lost(cell.handle)
        advanceTimeBy(1_000)
        assertEquals(listOf(wifi), delivered)
        assertNull(d.current)
        // A loss of a network that is not the current one changes nothing.
        d.submit(cell)
        d.lost(wifi.handle)
        advanceTimeBy(600)
        assertEquals(listOf(wifi, cell), delivered)
    }
}
