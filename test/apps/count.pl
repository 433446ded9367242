#!/usr/bin/perl
# count.pl: prints 0..N-1, one number per line, flushed, with a short sleep
# after each. test/integration/run.sh --count N checkpoints it at random
# moments and checks that the restarted interpreter carries on where the
# image was taken. Usage: count.pl [N [SECONDS_PER_LINE]]
use strict;
use warnings;
use Time::HiRes qw(sleep);

my $n = shift // 200;
my $delay = shift // 0.02;
$| = 1;    # one write(2) per print: no partial lines
for my $i (0 .. $n - 1) {
	print "$i\n";
	sleep($delay);
}
