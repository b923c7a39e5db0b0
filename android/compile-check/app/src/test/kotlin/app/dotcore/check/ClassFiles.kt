package app.dotcore.check

import java.io.DataInputStream

/**
 * Superclass chains read from class files (JVMS §4.1: constant pool,
 * access flags, this_class, super_class) found through [loader] as
 * resources, without defining any class.
 */
class ClassFiles(private val loader: ClassLoader) {
    fun exists(name: String): Boolean = loader.getResource(resource(name)) != null

    /** The superclasses of [name], nearest first, as far as class files are found. */
    fun superclasses(name: String): List<String> {
        val chain = mutableListOf<String>()
        var current: String? = superName(name)
        while (current != null) {
            chain += current
            current = superName(current)
        }
        return chain
    }

    private fun resource(name: String) = name.replace('.', '/') + ".class"

    private fun superName(name: String): String? {
        val stream = loader.getResourceAsStream(resource(name)) ?: return null
        DataInputStream(stream.buffered()).use { input ->
            require(input.readInt() == 0xCAFEBABE.toInt()) { "$name: not a class file" }
            input.readUnsignedShort() // minor
            input.readUnsignedShort() // major
            val count = input.readUnsignedShort()
            val utf8 = arrayOfNulls<String>(count)
            val classIndex = IntArray(count)
            var i = 1
            while (i < count) {
                when (val tag = input.readUnsignedByte()) {
                    1 -> utf8[i] = input.readUTF()
                    7 -> classIndex[i] = input.readUnsignedShort()
                    8, 16, 19, 20 -> input.skipBytes(2)
                    15 -> input.skipBytes(3)
                    3, 4, 9, 10, 11, 12, 17, 18 -> input.skipBytes(4)
                    5, 6 -> {
                        input.skipBytes(8)
                        i++ // takes two entries
                    }
                    else -> error("$name: unknown constant pool tag $tag")
                }
                i++
            }
            input.readUnsignedShort() // access flags
            input.readUnsignedShort() // this_class
            val superIndex = input.readUnsignedShort()
            if (superIndex == 0) return null // java.lang.Object
            return utf8[classIndex[superIndex]]?.replace('/', '.')
        }
    }
}
