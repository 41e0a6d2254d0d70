#!/usr/bin/env bash
# Ingest benchmark: our whole twin build against SUMO's netconvert building its network and
# osmium exporting the file, on the same inputs, side by side (hyperfine), plus a scaling run
# on tiled copies of an extract (time and peak memory).
#
#   scripts/bench-ingest.sh            # writes bench-out/ and prints a Markdown table
#
# Needs: sumo sumo-tools osmium-tool hyperfine (installed here with apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${SWM_SHARED_DATA:-$(pwd)/../shared/data}"
out=bench-out
mkdir -p "$out"
need=""
for p in sumo sumo-tools osmium-tool hyperfine time; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
cargo build --release -p swm_cli --bin swm
swm="${CARGO_TARGET_DIR:-target}/release/swm"
export SUMO_HOME="${SUMO_HOME:-/usr/share/sumo}"
tm="$SUMO_HOME/data/typemap"
for name in yeouido jamsil; do
  pbf="$data/seoul/$name.osm.pbf"
  # netconvert reads OSM XML only: give it (and us, in a second row) the same XML.
  xml="$out/$name.osm"
  osmium cat "$pbf" -o "$xml" -O
  hyperfine --warmup 2 --runs 10 --export-json "$out/$name.json" \
    -n "swm ingest (pbf)" "$swm ingest --quiet $pbf -o $out/$name.swt" \
    -n "swm ingest (xml)" "$swm ingest --quiet $xml -o $out/$name-xml.swt" \
    -n "netconvert (xml)" "netconvert --osm-files $xml --type-files $tm/osmNetconvert.typ.xml -o $out/$name.net.xml --no-warnings" \
    -n "netconvert +walk +tls (xml)" "netconvert --osm-files $xml --type-files $tm/osmNetconvert.typ.xml,$tm/osmNetconvertPedestrians.typ.xml --sidewalks.guess --crossings.guess --tls.guess --junctions.join -o $out/$name-walk.net.xml --no-warnings" \
    -n "osmium export (pbf)" "osmium export -f geojsonseq -O $pbf -o $out/$name.geojsonseq"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("| input | tool | mean (ms) | ± (ms) | netconvert / tool |")
print("| --- | --- | ---: | ---: | ---: |")
for name in ["yeouido", "jamsil"]:
    r = {x["command"]: x for x in json.load(open(f"{out}/{name}.json"))["results"]}
    nc = r["netconvert (xml)"]["mean"]
    for tool in r:
        x = r[tool]
        print(f"| {name} | {tool} | {x['mean']*1e3:.1f} | {x['stddev']*1e3:.1f} | {nc/x['mean']:.2f}x |")
PY
# Scaling: the Jamsil extract tiled k x k times (shifted copies, fresh ids), as OSM XML.
echo
echo "| tiles | input nodes | swm ingest (s) | peak RSS (MB) |"
echo "| ---: | ---: | ---: | ---: |"
for k in 1 2 4 6; do
  f="$out/tiled-$k.osm"
  [ -f "$f" ] || "$swm" tile "$data/seoul/jamsil.osm.pbf" --times "$k" -o "$f" --quiet >/dev/null
  nodes=$(grep -c '<node' "$f")
  /usr/bin/time -f "%e %M" -o "$out/time-$k.txt" "$swm" ingest --quiet "$f" -o "$out/tiled-$k.swt" >/dev/null
  read -r secs kb < "$out/time-$k.txt"
  echo "| $((k*k)) | $nodes | $secs | $((kb/1024)) |"
done
