#!/bin/bash
# Clean debug build time of a scratch package whose one target imports a library: the figure
# README's "Dependencies" table gives for each library considered.
# usage: scripts/measure-dependency.sh URL VERSION PRODUCT PACKAGE MODULE
#   e.g. scripts/measure-dependency.sh https://github.com/apple/swift-log 1.16.2 Logging swift-log Logging
# The scratch directory is not named like the dependency (SwiftPM would take it for it).
set -u
url=$1 version=$2 product=$3 package=$4 module=$5
dir=$(mktemp -d /tmp/probe-XXXXXX)
mkdir -p "$dir/Sources/Probe"
cat > "$dir/Package.swift" <<P
// swift-tools-version: 6.0
import PackageDescription
let package = Package(name: "Probe",
  dependencies: [.package(url: "$url", from: "$version")],
  targets: [.executableTarget(name: "Probe", dependencies: [.product(name: "$product", package: "$package")])])
P
echo "import $module; print(\"ok\")" > "$dir/Sources/Probe/main.swift"
cd "$dir" && swift package resolve > /dev/null
start=$(date +%s.%N)
swift build > build.log 2>&1; rc=$?
end=$(date +%s.%N)
echo "$package $version: clean debug build $(echo "$end - $start" | bc) s, exit $rc (load $(cut -d' ' -f1-3 /proc/loadavg)); log in $dir/build.log"
