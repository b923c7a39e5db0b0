package app.dotcore.logic

import app.dotcore.ffi.AnswerSource
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread

class QueryLogTest {
    private fun entry(i: Int) = QueryLogEntry(i.toLong(), "n$i.example.", 1, 0, AnswerSource.TLS, 1000)

    @Test
    fun keepsTheNewestUpToItsCapacityNewestFirst() {
        val log = QueryLog(capacity = 3)
        assertEquals(emptyList<QueryLogEntry>(), log.snapshot())
        log.add(entry(1))
        log.add(entry(2))
        assertEquals(listOf(2L, 1L), log.snapshot().map { it.timeMillis })
        for (i in 3..7) log.add(entry(i))
        assertEquals(3, log.size)
        assertEquals(listOf(7L, 6L, 5L), log.snapshot().map { it.timeMillis })
        log.clear()
        assertEquals(0, log.size)
        log.add(entry(8))
        assertEquals(listOf(8L), log.snapshot().map { it.timeMillis })
    }

    @Test
    fun defaultCapacityIs200() {
        val log = QueryLog()
        repeat(1000) { log.add(entry(it)) }
        assertEquals(200, log.size)
        assertEquals(999L, log.snapshot().first().timeMillis)
        assertEquals(800L, log.snapshot().last().timeMillis)
    }

    @Test
    fun rejectsAUselessCapacity() {
        assertThrows(IllegalArgumentException::class.java) { QueryLog(0) }
    }

    @Test
    fun concurrentWritersAndAReaderStayConsistent() {
        val log = QueryLog(capacity = 50)
        val start = CountDownLatch(1)
        val writers = (0 until 4).map { w ->
            thread {
                start.await()
                repeat(5_000) { log.add(entry(w * 100_000 + it)) }
            }
        }
        val largestSnapshot = AtomicInteger()
        val reader = thread {
            start.await()
            repeat(2_000) { largestSnapshot.accumulateAndGet(log.snapshot().size, ::maxOf) }
        }
        start.countDown()
        (writers + reader).forEach { it.join() }
        assertTrue(largestSnapshot.get() <= 50, "a snapshot exceeded the capacity: ${largestSnapshot.get()}")
        assertEquals(50, log.size)
        assertEquals(50, log.snapshot().toSet().size)
    }

    @Test
    fun dnsNumbersAreNamed() {
        assertEquals("AAAA", QueryLogEntry(0, "a.", 28, 3, AnswerSource.CACHE, 0).typeName)
        assertEquals("NXDOMAIN", QueryLogEntry(0, "a.", 28, 3, AnswerSource.CACHE, 0).rcodeName)
        assertEquals("TYPE999", DnsNames.type(999))
        assertEquals("SERVFAIL", DnsNames.rcode(2))
    }
}
