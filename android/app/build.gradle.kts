// The dotcore app: a thin VpnService shell around the Rust engine.
//
// Native code and bindings are built here, never committed:
//  * cargoNdk<Variant>: scripts/build-android.sh `libs` runs cargo-ndk for
//    arm64-v8a, armeabi-v7a and x86_64 (16 KB page-aligned; stripped in
//    release) into a generated directory under build/, added to the
//    variant's jniLibs.
//  * generateUniffiBindings<Variant>: scripts/build-android.sh `bindings`
//    builds the host library and runs the workspace's uniffi-bindgen, Kotlin
//    into a generated directory under build/, added to the variant's sources.
//  * dotcoreHostLibrary: the engine built for the build machine, which the
//    JVM unit tests (src/test) load through JNA, the real engine, not a fake.
// Everything else is a plain Android application without AndroidX.

import org.jetbrains.kotlin.gradle.dsl.JvmTarget
import javax.inject.Inject

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

/** The repository root (android/..): Cargo workspace, scripts, bindings. */
val workspaceRoot: File = rootProject.projectDir.parentFile

/**
 * The version of the rustls-platform-verifier-android crate in Cargo.lock.
 * The AAR must be exactly that version (its Kotlin classes are called
 * from the Rust verifier through JNI, with no compatibility promise).
 */
val rustlsVerifierVersion: String = run {
    val crate = "rustls-platform-verifier-android"
    val lockFile = objects.fileProperty().fileValue(workspaceRoot.resolve("Cargo.lock"))
    val lock = providers.fileContents(lockFile).asText.get()
    val lines = lock.lines()
    val at = lines.indexOfFirst { it.trim() == "name = \"$crate\"" }
    val version = if (at < 0) null else lines.drop(at + 1)
        .firstOrNull { it.trimStart().startsWith("version = ") }
        ?.substringAfter('"')?.substringBefore('"')
    version ?: throw GradleException("$crate not found in Cargo.lock; run `cargo generate-lockfile` in $workspaceRoot")
}

android {
    namespace = "app.dotcore"
    compileSdk = libs.versions.compileSdk.get().toInt()
    ndkVersion = libs.versions.ndk.get()

    defaultConfig {
        applicationId = "app.dotcore"
        // 26 (Android 8.0): startForegroundService, notification channels,
        // registerDefaultNetworkCallback(callback, handler) and adaptive
        // icons exist without compatibility code; about 97 % of active
        // devices. Newer APIs (Private DNS state 28+, lockdown state 29+,
        // foreground-service types 29/34+, POST_NOTIFICATIONS 33+) are
        // used behind Build.VERSION checks.
        minSdk = libs.versions.minSdk.get().toInt()
        targetSdk = libs.versions.targetSdk.get().toInt()
        versionCode = 1
        versionName = "0.1.0"
        // Framework-only JUnit 4 runner (no androidx.test), see
        // src/androidTest/kotlin/app/dotcore/test/DotTestRunner.kt.
        testInstrumentationRunner = "app.dotcore.test.DotTestRunner"
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
            // No signing config: `assembleRelease` produces an unsigned APK
            // to sign with your own key (see docs/android.md).
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    // DotCore (bindings/kotlin): the one-time JNI initialisation of the
    // engine's platform certificate verifier, owned by the bindings crate.
    sourceSets["main"].java.srcDir(workspaceRoot.resolve("bindings/kotlin"))
    // Checks written once for the device (androidTest) and the JVM
    // (android/robolectric compiles the same directory).
    sourceSets["androidTest"].java.srcDir("src/sharedTest/kotlin")

    packaging {
        jniLibs {
            // Stored uncompressed and page-aligned in the APK, loaded in
            // place (the default for minSdk >= 23; stated for clarity since
            // the 16 KB alignment of the libraries depends on it).
            useLegacyPackaging = false
        }
    }

    buildFeatures {
        buildConfig = false
    }

    testOptions {
        unitTests.all { it.useJUnitPlatform() }
    }

    lint {
        abortOnError = true
        // The app must not use APIs above minSdk without a version check.
        fatal += "NewApi"
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation(libs.kotlinx.coroutines.android)
    // The AAR carries libjnidispatch.so for every Android ABI.
    implementation("net.java.dev.jna:jna:${libs.versions.jna.get()}@aar")
    implementation(libs.rustls.platform.verifier) { version { strictly(rustlsVerifierVersion) } }

    testImplementation(platform(libs.junit.bom))
    testImplementation(libs.junit.jupiter)
    testRuntimeOnly(libs.junit.platform.launcher)
    testImplementation(libs.kotlinx.coroutines.test)
    // The jar carries libjnidispatch for the build machine (the AAR's
    // classes alone cannot load native code on a desktop JVM).
    testImplementation(libs.jna)

    androidTestImplementation(libs.junit4)
}

// No AndroidX or other Google-Maven-only library may reach the app, its
// unit tests or its instrumented tests: fail the build instead of shipping
// one by accident through a transitive dependency.
configurations.configureEach {
    if (name.endsWith("CompileClasspath") || name.endsWith("RuntimeClasspath")) {
        val configurationName = name
        resolutionStrategy.eachDependency {
            val group = requested.group
            if (group.startsWith("androidx.") || group.startsWith("com.google.android")) {
                throw GradleException(
                    "$configurationName: ${requested.group}:${requested.name} is not allowed " +
                        "(dotcore uses the Android framework only; see docs/android.md)",
                )
            }
        }
    }
}

/** Runs one subcommand of scripts/build-android.sh. */
abstract class BuildAndroidScriptTask : DefaultTask() {
    @get:Internal
    abstract val repoRoot: DirectoryProperty

    @get:Inject
    abstract val execOperations: ExecOperations

    init {
        // Cargo tracks its own inputs (the whole workspace) and is quick
        // when nothing changed; Gradle always asks it.
        outputs.upToDateWhen { false }
    }

    protected fun script(vararg args: String, env: Map<String, String> = emptyMap()) {
        val root = repoRoot.get().asFile
        execOperations.exec {
            workingDir = root
            commandLine(listOf("bash", root.resolve("scripts/build-android.sh").path) + args)
            environment(env)
        }
    }
}

/** The engine for every ABI, via cargo-ndk. */
abstract class CargoNdkTask : BuildAndroidScriptTask() {
    @get:Input
    abstract val profile: Property<String>

    @get:Input
    abstract val abis: ListProperty<String>

    @get:Input
    abstract val platform: Property<Int>

    @get:Internal
    abstract val ndkDirectory: DirectoryProperty

    @get:OutputDirectory
    abstract val outputDir: DirectoryProperty

    @TaskAction
    fun build() {
        script(
            "libs",
            "--profile", profile.get(),
            "--platform", platform.get().toString(),
            "--abis", abis.get().joinToString(","),
            "--out", outputDir.get().asFile.path,
            env = mapOf("ANDROID_NDK_HOME" to ndkDirectory.get().asFile.path),
        )
    }
}

/** Kotlin bindings, generated by the workspace's uniffi-bindgen. */
abstract class UniffiBindingsTask : BuildAndroidScriptTask() {
    @get:OutputDirectory
    abstract val outputDir: DirectoryProperty

    @TaskAction
    fun generate() {
        script("bindings", "--out", outputDir.get().asFile.path)
    }
}

/** libdotcore_ffi for the build machine, for the JVM unit tests. */
abstract class HostLibraryTask : BuildAndroidScriptTask() {
    @get:OutputDirectory
    abstract val outputDir: DirectoryProperty

    @TaskAction
    fun build() {
        script("host-lib", "--out", outputDir.get().asFile.path)
    }
}

val androidAbis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

androidComponents {
    onVariants { variant ->
        val suffix = variant.name.replaceFirstChar { it.uppercase() }
        val cargo = tasks.register<CargoNdkTask>("cargoNdk$suffix") {
            group = "dotcore"
            description = "Builds libdotcore_ffi.so for $androidAbis (${variant.name})"
            repoRoot.set(workspaceRoot)
            profile.set(if (variant.buildType == "release") "release" else "debug")
            abis.set(androidAbis)
            platform.set(libs.versions.minSdk.get().toInt())
            ndkDirectory.set(androidComponents.sdkComponents.ndkDirectory)
        }
        variant.sources.jniLibs?.addGeneratedSourceDirectory(cargo, CargoNdkTask::outputDir)

        val bindings = tasks.register<UniffiBindingsTask>("generateUniffiBindings$suffix") {
            group = "dotcore"
            description = "Generates the Kotlin bindings of dotcore-ffi (${variant.name})"
            repoRoot.set(workspaceRoot)
        }
        // Kotlin files in a Java source directory are compiled by the Kotlin
        // plugin; `sources.kotlin` is not picked up by every tool on AGP 8.
        variant.sources.java?.addGeneratedSourceDirectory(bindings, UniffiBindingsTask::outputDir)
    }
}

val hostLibrary = tasks.register<HostLibraryTask>("dotcoreHostLibrary") {
    group = "dotcore"
    description = "Builds libdotcore_ffi for this machine (JVM unit tests)"
    repoRoot.set(workspaceRoot)
    outputDir.set(layout.buildDirectory.dir("dotcore-host-lib"))
}

tasks.withType<Test>().configureEach {
    val libDir = hostLibrary.flatMap { it.outputDir }
    inputs.files(libDir).withPropertyName("dotcoreHostLibrary")
    jvmArgumentProviders.add(
        CommandLineArgumentProvider { listOf("-Djna.library.path=${libDir.get().asFile.absolutePath}") },
    )
}
