// The dotcore Android app: one module, `app`. The Rust engine is built by
// scripts/build-android.sh (cargo-ndk) and its Kotlin bindings are generated
// by uniffi-bindgen, both from app/build.gradle.kts into build directories;
// nothing generated is committed. See docs/android.md.

import groovy.json.JsonSlurper

pluginManagement {
    repositories {
        // Google's Maven serves the Android Gradle plugin and its tools only.
        google {
            content {
                includeGroupByRegex("com\\.android.*")
                includeGroupByRegex("com\\.google.*")
                includeGroupByRegex("androidx.*")
            }
        }
        mavenCentral()
        gradlePluginPortal()
    }
}

/**
 * The Maven repository holding the Kotlin half of rustls-platform-verifier
 * (group `rustls`, artifact `rustls-platform-verifier`, an AAR), matching
 * the `rustls-platform-verifier-android` crate that Cargo.lock selects.
 *
 * Older releases of that crate ship the AAR inside the crate as a local
 * Maven repository (`<crate>/maven/`); `cargo metadata` tells where Cargo
 * unpacked it. Newer releases (0.2+, used with rustls-platform-verifier
 * 0.6/0.7) no longer bundle it and the rustls project serves the same
 * layout from its `maven-archive` branch instead. Either way the version is
 * the crate's, which app/build.gradle.kts reads from Cargo.lock.
 */
fun rustlsVerifierRepository(): java.net.URI {
    val workspace = settingsDir.resolve("../Cargo.toml").canonicalFile
    val json = try {
        providers.exec {
            commandLine(
                "cargo", "metadata", "--format-version", "1",
                "--manifest-path", workspace.path,
                "--filter-platform", "aarch64-linux-android",
            )
            isIgnoreExitValue = true
        }.standardOutput.asText.get()
    } catch (e: Exception) {
        "" // cargo not installed
    }
    if (json.isNotBlank()) {
        @Suppress("UNCHECKED_CAST")
        val packages = (JsonSlurper().parseText(json) as Map<String, Any?>)["packages"] as List<Map<String, Any?>>
        val crate = packages.firstOrNull { it["name"] == "rustls-platform-verifier-android" }
        val bundled = (crate?.get("manifest_path") as String?)?.let { File(it).parentFile.resolve("maven") }
        if (bundled != null && bundled.isDirectory) return bundled.toURI()
    } else {
        org.gradle.api.logging.Logging.getLogger("dotcore")
            .warn("dotcore: `cargo metadata` failed (is cargo on PATH?); using the rustls maven-archive")
    }
    return java.net.URI("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        // AGP resolves its own tools (aapt2, lint, the test platform) through
        // the project's repositories; no library of the app comes from here
        // (app/build.gradle.kts fails the build if an androidx or
        // com.google.android library reaches a classpath).
        google {
            content {
                includeGroupByRegex("com\\.android.*")
                includeGroupByRegex("com\\.google\\.testing.*")
                includeGroupByRegex("androidx.*")
            }
        }
        mavenCentral()
        maven {
            name = "rustlsPlatformVerifier"
            url = rustlsVerifierRepository()
            content { includeGroup("rustls") }
        }
    }
}

rootProject.name = "dotcore"
include(":app")
