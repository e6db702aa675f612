# SPDX-License-Identifier: Apache-2.0
# bench/plots.gp -- the charts of bench/plots (which writes the data and
# calls:  gnuplot -e "chart='ratios'; work='DIR'; output='FILE'" plots.gp).
# chart: ratios or latency.  DIR holds CHART.dat, CHART.gp (row count,
# y labels, range) and title.

load work.'/'.chart.'.gp'
subtitle = system('cat '.work.'/title')
height = 190 + 22 * rows

# noenhanced: system names hold underscores (apr_thread_pool).
set terminal svg size 960,height dynamic noenhanced font 'sans,12' background '#ffffff'
set output output
set border 3
set grid xtics mxtics lc rgb '#dddddd'
set yrange [rows + 0.8 : 0] # first group at the top
set ytics scale 0 font 'sans,11'
set key below horizontal
set lmargin 52
set rmargin 6

if (chart eq 'ratios') {
  set title "Pebble against each peer: how many times as fast Pebble is (median repetition)\n".subtitle
  set xlabel "times as fast as the peer: above 1, Pebble is faster\n(a rate: Pebble / peer; a time: peer / Pebble)"
  # A log scale once the figures span more than a factor of 10.
  if (xmax / xmin > 10) {
    set logscale x 10
    set xrange [xmin / 1.6 : xmax * 2.2]
  } else {
    set xrange [0 : xmax * 1.25]
  }
  set arrow from 1, graph 0 to 1, graph 1 nohead lw 1.5 lc rgb '#333333' front
  set style fill solid 0.85 noborder
  # Columns: row, median, bar low, bar high, worst, target, colour, label.
  plot work.'/ratios.dat' using 2:1:3:4:($1 - 0.35):($1 + 0.35):($7 == 1 ? 0x4c9a2a : 0xc0392b) \
         with boxxyerror lc rgb variable title 'median (green: target met, or faster where none)', \
       '' using 5:($1 - 0.3):(0):(0.6) with vectors nohead lw 2 lc rgb '#000000' title 'worst repetition', \
       '' using 6:($1 - 0.45):(0):(0.9) with vectors nohead lw 3 lc rgb '#1f5fbf' title 'target', \
       '' using 4:1:8 with labels left offset 0.6,0 font 'sans,10' notitle
} else {
  set title "Latency: p50 (mark) to p99 (bar end), microseconds\n".subtitle
  set xlabel 'microseconds (log scale)'
  set logscale x 10
  set style fill solid 0.6 noborder
  # Columns: row, p50, p99.
  plot work.'/latency.dat' using 2:1:2:3:($1 - 0.3):($1 + 0.3) \
         with boxxyerror lc rgb '#7aa6d6' title 'p50 to p99', \
       '' using 2:($1 - 0.35):(0):(0.7) with vectors nohead lw 2.5 lc rgb '#1f3f7f' title 'p50', \
       '' using 3:($1 - 0.35):(0):(0.7) with vectors nohead lw 2.5 lc rgb '#c0392b' title 'p99', \
       '' using 3:1:(sprintf('%.4g / %.4g', $2, $3)) with labels left offset 0.8,0 font 'sans,10' notitle
}
