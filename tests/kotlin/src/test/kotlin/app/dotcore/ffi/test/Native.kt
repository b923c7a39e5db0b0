package app.dotcore.ffi.test

import com.sun.jna.Library
import com.sun.jna.Native

/**
 * The few libc calls the tests need to make and inspect descriptors the way
 * Android's VpnService would hand them over (Linux x86_64/aarch64 values).
 */
interface LibC : Library {
    fun socketpair(domain: Int, type: Int, protocol: Int, sv: IntArray): Int
    fun fcntl(fd: Int, cmd: Int, arg: Int): Int
    fun getsockopt(fd: Int, level: Int, optname: Int, optval: IntArray, optlen: IntArray): Int
    fun read(fd: Int, buf: ByteArray, count: Long): Long
    fun write(fd: Int, buf: ByteArray, count: Long): Long
    fun close(fd: Int): Int

    companion object {
        val INSTANCE: LibC = Native.load("c", LibC::class.java)

        const val AF_UNIX = 1
        const val SOCK_STREAM = 1
        const val SOCK_SEQPACKET = 5
        const val SOL_SOCKET = 1
        const val SO_TYPE = 3
        const val F_GETFD = 1
        const val F_GETFL = 3
        const val F_SETFL = 4
        const val O_NONBLOCK = 0x800
        const val EAGAIN = 11

        /** The socket type of `fd` (SOCK_STREAM, ...), or -1 if it is not an open socket. */
        fun socketType(fd: Int): Int {
            val value = IntArray(1)
            val len = intArrayOf(4)
            return if (INSTANCE.getsockopt(fd, SOL_SOCKET, SO_TYPE, value, len) == 0) value[0] else -1
        }

        fun isOpen(fd: Int): Boolean = INSTANCE.fcntl(fd, F_GETFD, 0) != -1
    }
}
