#!/usr/bin/env bash
# Print the path of helm or kubectl for the make targets: the one built for the local
# cluster when it is cached (its kubectl matches the cluster's version), else the one on
# PATH (kind and minikube users), else build it (one-off, cached).
set -euo pipefail
name=$1
case $name in helm) component=helm ;; kubectl) component=kubernetes ;; *) exit 2 ;; esac
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if dir=$(MURMUR_BUILD_CACHED_ONLY=1 "$here/local/build/build.sh" "$component" 2>/dev/null | cut -d= -f2) \
   && [ -x "$dir/$name" ]; then
  echo "$dir/$name"
elif command -v "$name" >/dev/null; then
  command -v "$name"
else
  dir=$("$here/local/build/build.sh" "$component" | cut -d= -f2)
  echo "$dir/$name"
fi
