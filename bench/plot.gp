# plot.gp -- the bar chart in docs/benchmarks.png: median Mops/s per
# allocator per workload, log scale (the arms span three orders of
# magnitude).  bench/run.sh --write-docs runs:
#   gnuplot -e "data='results.tsv'; out='benchmarks.png'; subtitle='...'" bench/plot.gp
if (!exists("data")) data = 'results.tsv'
if (!exists("out")) out = 'benchmarks.png'
if (!exists("subtitle")) subtitle = ''

set terminal pngcairo size 1100,560 font "DejaVu Sans,10" noenhanced
set output out
set datafile separator "\t"
set datafile missing "?"
set title "fmalloc and its peers: median throughput per workload (higher is better)\n".subtitle
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y
set format y "%g"
set ylabel "million operations per second (log scale)"
set grid ytics
set key outside right top vertical
set xtics nomirror
set ytics nomirror
set border 3
# One cluster per row, one bar per column after the first.
ncol = words(system("head -n 1 '".data."' | tr '\\t' ' '"))
plot for [i=2:ncol] data using i:xtic(1) title columnheader(i)
