#!/bin/sh
# Regenerates the PWA icons in public/icons/ from public/favicon.svg (ImageMagick: apt-get install -y imagemagick).
# The maskable icon keeps the mark inside the central 80 % safe zone (https://web.dev/articles/maskable-icon).
set -e
CONVERT=${CONVERT:-/usr/bin/convert}
cd "$(dirname "$0")/../.."
"$CONVERT" -background none -density 768 public/favicon.svg -resize 192x192 -depth 8 public/icons/icon-192.png
"$CONVERT" -background none -density 1536 public/favicon.svg -resize 512x512 -depth 8 public/icons/icon-512.png
"$CONVERT" -background none -density 768 public/favicon.svg -resize 180x180 -depth 8 public/icons/apple-touch-icon.png
"$CONVERT" -size 512x512 xc:'#1f5fbf' \( -background none -density 1536 public/favicon.svg -resize 360x360 \) -gravity center -composite -depth 8 public/icons/icon-maskable-512.png
