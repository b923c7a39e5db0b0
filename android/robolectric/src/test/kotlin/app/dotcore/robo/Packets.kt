package app.dotcore.robo

import java.io.ByteArrayOutputStream
import java.net.InetAddress

/** IPv4/UDP DNS packets, as an app's resolver would send them into the tunnel. */
object Packets {
    fun dnsQuery(id: Int, name: String, qtype: Int = 1): ByteArray {
        val out = ByteArrayOutputStream()
        fun u16(v: Int) { out.write(v shr 8 and 0xff); out.write(v and 0xff) }
        u16(id); u16(0x0100); u16(1); u16(0); u16(0); u16(0)
        for (label in name.trimEnd('.').split('.')) { out.write(label.length); out.write(label.toByteArray()) }
        out.write(0)
        u16(qtype); u16(1)
        return out.toByteArray()
    }

    private fun checksum(b: ByteArray, from: Int, len: Int): Int {
        var sum = 0L
        var i = from
        while (i < from + len) {
            val hi = b[i].toInt() and 0xff
            val lo = if (i + 1 < from + len) b[i + 1].toInt() and 0xff else 0
            sum += (hi shl 8) or lo
            i += 2
        }
        while (sum shr 16 != 0L) sum = (sum and 0xffff) + (sum shr 16)
        return sum.inv().toInt() and 0xffff
    }

    fun udp4(src: String, dst: String, srcPort: Int, dstPort: Int, payload: ByteArray): ByteArray {
        val s = InetAddress.getByName(src).address
        val d = InetAddress.getByName(dst).address
        val total = 20 + 8 + payload.size
        val p = ByteArray(total)
        fun put16(at: Int, v: Int) { p[at] = (v shr 8).toByte(); p[at + 1] = v.toByte() }
        p[0] = 0x45; put16(2, total); p[8] = 64; p[9] = 17
        s.copyInto(p, 12); d.copyInto(p, 16)
        put16(10, checksum(p, 0, 20))
        put16(20, srcPort); put16(22, dstPort); put16(24, 8 + payload.size)
        payload.copyInto(p, 28)
        // UDP checksum over the pseudo-header.
        val pseudo = ByteArray(12 + 8 + payload.size)
        s.copyInto(pseudo, 0); d.copyInto(pseudo, 4); pseudo[9] = 17
        pseudo[10] = ((8 + payload.size) shr 8).toByte(); pseudo[11] = (8 + payload.size).toByte()
        p.copyInto(pseudo, 12, 20, total)
        put16(26, checksum(pseudo, 0, pseudo.size).let { if (it == 0) 0xffff else it })
        return p
    }

    /** The DNS payload of an IPv4/UDP packet. */
    fun udp4Payload(p: ByteArray): ByteArray? {
        if (p.size < 28 || (p[0].toInt() shr 4) != 4 || p[9].toInt() != 17) return null
        val ihl = (p[0].toInt() and 0x0f) * 4
        return p.copyOfRange(ihl + 8, p.size)
    }

    fun dnsId(m: ByteArray) = ((m[0].toInt() and 0xff) shl 8) or (m[1].toInt() and 0xff)
    fun rcode(m: ByteArray) = m[3].toInt() and 0x0f
    fun answers(m: ByteArray) = ((m[6].toInt() and 0xff) shl 8) or (m[7].toInt() and 0xff)

    /** The address of the first A record in the answer section of [m], or null. */
    fun lastA(m: ByteArray): String? {
        fun u8(i: Int) = m[i].toInt() and 0xff
        fun u16(i: Int) = (u8(i) shl 8) or u8(i + 1)
        fun skipName(from: Int): Int {
            var i = from
            while (true) {
                val len = u8(i)
                if (len == 0) return i + 1
                if (len and 0xc0 == 0xc0) return i + 2
                i += len + 1
            }
        }
        if (m.size < 12) return null
        var i = 12
        repeat(u16(4)) { i = skipName(i) + 4 }
        repeat(answers(m)) {
            i = skipName(i)
            val type = u16(i)
            val rdlen = u16(i + 8)
            if (type == 1 && rdlen == 4) return InetAddress.getByAddress(m.copyOfRange(i + 10, i + 14)).hostAddress
            i += 10 + rdlen
        }
        return null
    }
}
