/*
 * tsdbbench - micro-benchmark of the engine's storage path (tsdb.h) on realistic data.
 *
 * Usage: tsdbbench [--series N] [--hours H] [--batch N] [--jitter MS] [--seed S]
 *                  [--dir D] [--only append,decode,disk,rss] [--keep]
 *
 * Data (deterministic for a seed): N series (default 10,000) from node_exporter-like
 * targets of 1,000 series each (node_cpu_seconds_total{cpu,mode},
 * node_memory_*_bytes, node_network_*_total{device}, node_filesystem_*{device,fstype,
 * mountpoint}, node_disk_*, node_vmstat_*, node_netstat_*, go_*, process_*,
 * node_scrape_collector_*{collector}, node_interrupts_total{cpu,type,devices}, ... with
 * instance and job labels). Every target is scraped every 15 s at its own offset with
 * -3..+3 ms jitter (--jitter). Counters grow by realistic increments (idle ones stay flat; CPU
 * seconds at 0.01 s precision; rare resets), gauges walk at their precision (memory in
 * 4096-byte pages, temperatures at 0.1, load at 0.01, durations at full precision),
 * constants stay constant.
 *
 * Phases and what they print:
 *   append  ns per appended sample for existing series (first scrape, which creates the
 *           series, is timed apart). One ts_db_append per target scrape (--batch series,
 *           like a remote-write request), H hours of data, then a forced
 *           ts_db_checkpoint whose time is included. Runs with sync=never, then
 *           sync=always (batch of --batch series and whole-round batches). Reports wall
 *           time inside the calls and CPU time: the appending thread plus the
 *           background threads (writer, WAL), i.e. the cost on one core.
 *   decode  after ts_db_close + ts_db_open of the sync=never database: select every
 *           series over the whole range and iterate every sample (ns/sample), also the
 *           raw XOR decode of the same chunks (ts_chunk_it + ts_xor_next).
 *   disk    bytes/sample of the LMDB files (allocated blocks and apparent size; WAL
 *           excluded), split into partitions and index, and the XOR payload alone.
 *   rss     VmRSS before and after creating N series with 4 samples each, per series
 *           (and RssAnon), in a fresh database; runs first, on a fresh heap.
 * Not a test: the numbers depend on the machine; nothing is asserted.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/xor.h"
#include "tsdb/tsdb.h"

#define T0_MS INT64_C(1704067200000) /* 2024-01-01T00:00:00Z */
#define SCRAPE_MS 15000
#define MAX_LABELS 6

static uint64_t g_seed = 1;
static int64_t g_jitter_ms = 3; /* scrape timestamps deviate -j..+j ms */

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	return mix(rng_state++);
}
static double unif(void) /* [0, 1) */
{
	return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
}

static double now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- the series of one target -------------------------------------------------- */

enum kind {
	K_CONST,   /* never changes */
	K_COUNTER, /* integer counter, rate per scrape log-uniform, 30% idle */
	K_CPU,	   /* seconds counter at 0.01 s, rate given by the mode */
	K_SECONDS, /* seconds counter at 0.001 s (disk times, gc) */
	K_GAUGE,   /* random walk at a quantum */
	K_FULL,	   /* full-precision float gauge (durations) */
	K_TIME,	   /* node_time_seconds: the scrape time in seconds */
};

struct tmpl {
	const char *name;
	enum kind kind;
	double q, lo, hi; /* gauges: quantum, range; counters: rate hint */
	const char *ln[3], *lv[3];
	uint32_t n_l;
};

static struct tmpl *tm;
static size_t n_tm, cap_tm;

static void add(const char *name, enum kind k, double q, double lo, double hi, int n_l, ...)
{
	if (n_tm == cap_tm) {
		cap_tm = cap_tm ? cap_tm * 2 : 1024;
		tm = realloc(tm, cap_tm * sizeof *tm);
		if (!tm)
			abort();
	}
	struct tmpl *t = &tm[n_tm++];
	memset(t, 0, sizeof *t);
	t->name = name;
	t->kind = k;
	t->q = q;
	t->lo = lo;
	t->hi = hi;
	t->n_l = (uint32_t)n_l;
	va_list ap;
	va_start(ap, n_l);
	for (int i = 0; i < n_l; i++) {
		t->ln[i] = va_arg(ap, const char *);
		t->lv[i] = va_arg(ap, const char *);
	}
	va_end(ap);
}

static const char *const cpus[] = { "0", "1", "2", "3", "4", "5", "6", "7" };
static const char *const modes[] = { "idle",	"iowait", "irq",    "nice",
				     "softirq", "steal",  "system", "user" };
static const double mode_share[] = { 0.85, 0.01, 0.0, 0.001, 0.005, 0.0, 0.04, 0.08 };
static const char *const netdevs[] = { "eth0", "eth1", "lo", "docker0", "veth3f2a1c9", "wlan0" };
static const char *const disks[] = { "sda", "sdb", "nvme0n1", "dm-0" };
static const char *const fs[][3] = {
	{ "/dev/sda1", "ext4", "/" },
	{ "/dev/sda2", "ext4", "/home" },
	{ "/dev/nvme0n1p1", "xfs", "/var/lib/docker" },
	{ "/dev/sdb1", "ext4", "/data" },
	{ "tmpfs", "tmpfs", "/run" },
	{ "tmpfs", "tmpfs", "/dev/shm" },
	{ "/dev/sda3", "vfat", "/boot/efi" },
	{ "overlay", "overlay", "/var/lib/docker/overlay2" },
};

static char *sdup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sdup(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	char *s = strdup(buf);
	if (!s)
		abort();
	return s;
}

/* Builds the ~1,000 series of one node_exporter target (without instance/job). */
static void build_templates(void)
{
	for (int c = 0; c < 8; c++)
		for (int m = 0; m < 8; m++)
			add("node_cpu_seconds_total", K_CPU, 0.01, mode_share[m], 0, 2, "cpu",
			    cpus[c], "mode", modes[m]);
	for (int c = 0; c < 8; c++) {
		add("node_cpu_guest_seconds_total", K_CONST, 0, 0, 0, 2, "cpu", cpus[c], "mode",
		    "nice");
		add("node_cpu_guest_seconds_total", K_CONST, 0, 0, 0, 2, "cpu", cpus[c], "mode",
		    "user");
		add("node_cpu_scaling_frequency_hertz", K_GAUGE, 1e5, 8e8, 4.2e9, 1, "cpu",
		    cpus[c]);
		add("node_softnet_processed_total", K_COUNTER, 0, 0, 0, 1, "cpu", cpus[c]);
		add("node_softnet_dropped_total", K_CONST, 0, 0, 0, 1, "cpu", cpus[c]);
		add("node_softnet_times_squeezed_total", K_COUNTER, 0, 0, 0, 1, "cpu", cpus[c]);
		add("node_schedstat_running_seconds_total", K_SECONDS, 0.001, 2, 0, 1, "cpu",
		    cpus[c]);
		add("node_schedstat_waiting_seconds_total", K_SECONDS, 0.001, 0.3, 0, 1, "cpu",
		    cpus[c]);
		add("node_schedstat_timeslices_total", K_COUNTER, 0, 0, 0, 1, "cpu", cpus[c]);
	}
	static const char *const mem[] = {
		"Active",	  "Active_anon",    "Active_file",	 "AnonHugePages",
		"AnonPages",	  "Bounce",	    "Buffers",		 "Cached",
		"CommitLimit",	  "Committed_AS",   "DirectMap1G",	 "DirectMap2M",
		"DirectMap4k",	  "Dirty",	    "HardwareCorrupted", "HugePages_Free",
		"HugePages_Rsvd", "HugePages_Surp", "HugePages_Total",	 "Hugepagesize",
		"Inactive",	  "Inactive_anon",  "Inactive_file",	 "KernelStack",
		"Mapped",	  "MemAvailable",   "MemFree",		 "MemTotal",
		"Mlocked",	  "NFS_Unstable",   "PageTables",	 "Percpu",
		"SReclaimable",	  "SUnreclaim",	    "ShmemHugePages",	 "ShmemPmdMapped",
		"Shmem",	  "Slab",	    "SwapCached",	 "SwapFree",
		"SwapTotal",	  "Unevictable",    "VmallocChunk",	 "VmallocTotal",
		"VmallocUsed",	  "Writeback",	    "WritebackTmp"
	};
	for (size_t i = 0; i < sizeof mem / sizeof *mem; i++) {
		int konst = strstr(mem[i], "Total") || strstr(mem[i], "Huge") ||
			    strstr(mem[i], "Limit") || strstr(mem[i], "DirectMap") ||
			    strcmp(mem[i], "Bounce") == 0 || strcmp(mem[i], "NFS_Unstable") == 0 ||
			    strcmp(mem[i], "HardwareCorrupted") == 0;
		add(sdup("node_memory_%s_bytes", mem[i]), konst ? K_CONST : K_GAUGE, 4096, 1e8,
		    3e10, 0);
	}
	static const char *const rx[] = { "bytes", "packets", "errs",	    "drop",
					  "fifo",  "frame",   "compressed", "multicast" };
	static const char *const tx[] = { "bytes", "packets", "errs",	 "drop",
					  "fifo",  "colls",   "carrier", "compressed" };
	static const char *const nconst[] = {
		"up",	    "mtu_bytes", "speed_bytes",		 "carrier",
		"iface_id", "flags",	 "transmit_queue_length"
	};
	for (int d = 0; d < 6; d++) {
		for (int i = 0; i < 8; i++) {
			add(sdup("node_network_receive_%s_total", rx[i]),
			    i < 2 ? K_COUNTER : K_CONST, 0, 0, 0, 1, "device", netdevs[d]);
			add(sdup("node_network_transmit_%s_total", tx[i]),
			    i < 2 ? K_COUNTER : K_CONST, 0, 0, 0, 1, "device", netdevs[d]);
		}
		for (int i = 0; i < 7; i++)
			add(sdup("node_network_%s", nconst[i]), K_CONST, 0, 0, 0, 1, "device",
			    netdevs[d]);
	}
	static const char *const fsm[] = { "avail_bytes", "free_bytes", "size_bytes",  "files",
					   "files_free",  "readonly",	"device_error" };
	for (int f = 0; f < 8; f++)
		for (int i = 0; i < 7; i++)
			add(sdup("node_filesystem_%s", fsm[i]),
			    i < 2    ? K_GAUGE
			    : i == 4 ? K_GAUGE
				     : K_CONST,
			    i < 2 ? 4096 : 1, 1e9, 5e11, 3, "device", fs[f][0], "fstype", fs[f][1],
			    "mountpoint", fs[f][2]);
	static const char *const dm[] = { "reads_completed_total",
					  "reads_merged_total",
					  "read_bytes_total",
					  "read_time_seconds_total",
					  "writes_completed_total",
					  "writes_merged_total",
					  "written_bytes_total",
					  "write_time_seconds_total",
					  "io_now",
					  "io_time_seconds_total",
					  "io_time_weighted_seconds_total",
					  "discards_completed_total",
					  "discards_merged_total",
					  "discarded_sectors_total",
					  "discard_time_seconds_total",
					  "flush_requests_total",
					  "flush_requests_time_seconds_total" };
	for (int d = 0; d < 4; d++)
		for (size_t i = 0; i < sizeof dm / sizeof *dm; i++)
			add(sdup("node_disk_%s", dm[i]),
			    strstr(dm[i], "seconds")	   ? K_SECONDS
			    : strcmp(dm[i], "io_now") == 0 ? K_GAUGE
							   : K_COUNTER,
			    strcmp(dm[i], "io_now") == 0 ? 1 : 0.001, 0.05, 8, 1, "device",
			    disks[d]);
	static const char *const chips[] = { "platform_coretemp_0", "pci0000:00_0000:00:18_3",
					     "nvme_nvme0" };
	static const char *const sensors[] = { "temp1", "temp2", "temp3", "temp4" };
	for (int c = 0; c < 3; c++)
		for (int s = 0; s < 4; s++) {
			add("node_hwmon_temp_celsius", K_GAUGE, 0.1, 30, 90, 2, "chip", chips[c],
			    "sensor", sensors[s]);
			add("node_hwmon_temp_crit_celsius", K_CONST, 0, 0, 0, 2, "chip", chips[c],
			    "sensor", sensors[s]);
			add("node_hwmon_temp_max_celsius", K_CONST, 0, 0, 0, 2, "chip", chips[c],
			    "sensor", sensors[s]);
		}
	static const char *const vm[] = { "pgpgin",
					  "pgpgout",
					  "pswpin",
					  "pswpout",
					  "pgfault",
					  "pgmajfault",
					  "oom_kill",
					  "pgalloc_normal",
					  "pgfree",
					  "pgactivate",
					  "pgdeactivate",
					  "pgrefill",
					  "pgsteal_kswapd",
					  "pgsteal_direct",
					  "pgscan_kswapd",
					  "pgscan_direct",
					  "pginodesteal",
					  "slabs_scanned",
					  "kswapd_inodesteal",
					  "pageoutrun",
					  "allocstall_normal",
					  "pgrotated",
					  "drop_pagecache",
					  "drop_slab",
					  "numa_hit",
					  "numa_miss",
					  "numa_foreign",
					  "numa_interleave",
					  "numa_local",
					  "numa_other",
					  "thp_fault_alloc",
					  "thp_collapse_alloc",
					  "nr_dirtied",
					  "nr_written",
					  "workingset_refault_anon",
					  "workingset_refault_file",
					  "workingset_activate_anon",
					  "workingset_activate_file",
					  "workingset_nodereclaim",
					  "compact_stall" };
	for (size_t i = 0; i < sizeof vm / sizeof *vm; i++)
		add(sdup("node_vmstat_%s", vm[i]), K_COUNTER, 0, 0, 0, 0);
	static const char *const proto[] = { "Tcp",  "Udp", "TcpExt", "Ip",
					     "Icmp", "Ip6", "Udp6",   "Icmp6" };
	static const char *const field[] = { "InSegs",	    "OutSegs",	    "RetransSegs",
					     "ActiveOpens", "PassiveOpens", "CurrEstab",
					     "InErrs",	    "OutRsts",	    "InDatagrams",
					     "OutDatagrams" };
	for (int p = 0; p < 8; p++)
		for (int f = 0; f < 10; f++)
			add(sdup("node_netstat_%s_%s", proto[p], field[f]),
			    f == 5 ? K_GAUGE : K_COUNTER, 1, 5, 500, 0);
	static const char *const sock[] = { "sockets_used",  "TCP_alloc",     "TCP_inuse",
					    "TCP_mem",	     "TCP_mem_bytes", "TCP_orphan",
					    "TCP_tw",	     "UDP_inuse",     "UDP_mem",
					    "UDP_mem_bytes", "UDPLITE_inuse", "RAW_inuse",
					    "FRAG_inuse",    "FRAG_memory",   "TCP6_inuse" };
	for (int i = 0; i < 15; i++)
		add(sdup("node_sockstat_%s", sock[i]), K_GAUGE, 1, 0, 3000, 0);
	add("node_load1", K_GAUGE, 0.01, 0, 16, 0);
	add("node_load5", K_GAUGE, 0.01, 0, 16, 0);
	add("node_load15", K_GAUGE, 0.01, 0, 16, 0);
	add("node_procs_running", K_GAUGE, 1, 1, 20, 0);
	add("node_procs_blocked", K_GAUGE, 1, 0, 4, 0);
	add("node_context_switches_total", K_COUNTER, 0, 0, 0, 0);
	add("node_intr_total", K_COUNTER, 0, 0, 0, 0);
	add("node_forks_total", K_COUNTER, 0, 0, 0, 0);
	add("node_boot_time_seconds", K_CONST, 0, 0, 0, 0);
	add("node_time_seconds", K_TIME, 0, 0, 0, 0);
	add("node_entropy_available_bits", K_GAUGE, 1, 200, 4096, 0);
	add("node_filefd_allocated", K_GAUGE, 1, 1000, 20000, 0);
	add("node_filefd_maximum", K_CONST, 0, 0, 0, 0);
	add("node_nf_conntrack_entries", K_GAUGE, 1, 10, 5000, 0);
	add("node_nf_conntrack_entries_limit", K_CONST, 0, 0, 0, 0);
	add("node_uname_info", K_CONST, 0, 0, 0, 3, "machine", "x86_64", "release",
	    "6.1.0-18-amd64", "sysname", "Linux");
	add("node_os_info", K_CONST, 0, 0, 0, 2, "id", "debian", "version_id", "12");
	add("node_exporter_build_info", K_CONST, 0, 0, 0, 2, "goversion", "go1.19.8", "version",
	    "1.5.0");
	static const char *const q[] = { "0", "0.25", "0.5", "0.75", "1" };
	for (int i = 0; i < 5; i++)
		add("go_gc_duration_seconds", K_FULL, 0, 1e-5, 2e-3, 1, "quantile", q[i]);
	add("go_gc_duration_seconds_sum", K_SECONDS, 1e-6, 0.001, 0, 0);
	add("go_gc_duration_seconds_count", K_COUNTER, 0, 0, 0, 0);
	add("go_goroutines", K_GAUGE, 1, 5, 15, 0);
	add("go_threads", K_GAUGE, 1, 6, 12, 0);
	static const char *const gm[] = {
		"alloc_bytes",	       "alloc_bytes_total", "buck_hash_sys_bytes",
		"frees_total",	       "gc_sys_bytes",	    "heap_alloc_bytes",
		"heap_idle_bytes",     "heap_inuse_bytes",  "heap_objects",
		"heap_released_bytes", "heap_sys_bytes",    "last_gc_time_seconds",
		"lookups_total",       "mallocs_total",	    "mcache_inuse_bytes",
		"mcache_sys_bytes",    "mspan_inuse_bytes", "mspan_sys_bytes",
		"next_gc_bytes",       "other_sys_bytes",   "stack_inuse_bytes",
		"stack_sys_bytes",     "sys_bytes"
	};
	for (size_t i = 0; i < sizeof gm / sizeof *gm; i++)
		add(sdup("go_memstats_%s", gm[i]),
		    strstr(gm[i], "total")  ? K_COUNTER
		    : strstr(gm[i], "time") ? K_FULL
					    : K_GAUGE,
		    8, 1e6, 3e7, 0);
	add("process_cpu_seconds_total", K_CPU, 0.01, 0.002, 0, 0);
	add("process_resident_memory_bytes", K_GAUGE, 4096, 1e7, 3e7, 0);
	add("process_virtual_memory_bytes", K_GAUGE, 4096, 7e8, 8e8, 0);
	add("process_open_fds", K_GAUGE, 1, 8, 12, 0);
	add("process_max_fds", K_CONST, 0, 0, 0, 0);
	add("process_start_time_seconds", K_CONST, 0, 0, 0, 0);
	static const char *const coll[] = {
		"arp",	      "bcache",	      "bonding",	  "btrfs",	"conntrack",
		"cpu",	      "cpufreq",      "diskstats",	  "dmi",	"edac",
		"entropy",    "fibrechannel", "filefd",		  "filesystem", "hwmon",
		"infiniband", "ipvs",	      "loadavg",	  "mdadm",	"meminfo",
		"netclass",   "netdev",	      "netstat",	  "nfs",	"nfsd",
		"nvme",	      "os",	      "powersupplyclass", "pressure",	"rapl",
		"schedstat",  "selinux",      "sockstat",	  "softnet",	"stat",
		"tapestats",  "textfile",     "thermal_zone",	  "time",	"timex"
	};
	for (int i = 0; i < 40; i++) {
		add("node_scrape_collector_duration_seconds", K_FULL, 0, 1e-5, 0.05, 1, "collector",
		    coll[i]);
		add("node_scrape_collector_success", K_CONST, 0, 0, 0, 1, "collector", coll[i]);
	}
	add("up", K_CONST, 0, 0, 0, 0);
	add("scrape_duration_seconds", K_FULL, 0, 0.01, 0.08, 0);
	add("scrape_samples_scraped", K_CONST, 0, 0, 0, 0);
	add("scrape_samples_post_metric_relabeling", K_CONST, 0, 0, 0, 0);
	add("scrape_series_added", K_CONST, 0, 0, 0, 0);
	/* node_interrupts_total{cpu,type,devices} fills up to 1,000 series per target. */
	static const char *const irq[][2] = { { "0", "IO-APIC-edge timer" },
					      { "1", "IO-APIC-edge i8042" },
					      { "8", "IO-APIC-edge rtc0" },
					      { "9", "IO-APIC-fasteoi acpi" },
					      { "12", "IO-APIC-edge i8042" },
					      { "16", "ehci_hcd:usb1" },
					      { "24", "PCI-MSI-edge nvme0q0" },
					      { "25", "PCI-MSI-edge nvme0q1" },
					      { "26", "PCI-MSI-edge eth0-rx-0" },
					      { "27", "PCI-MSI-edge eth0-tx-0" },
					      { "28", "PCI-MSI-edge ahci" },
					      { "29", "PCI-MSI-edge xhci_hcd" },
					      { "NMI", "Non-maskable interrupts" },
					      { "LOC", "Local timer interrupts" },
					      { "SPU", "Spurious interrupts" },
					      { "PMI", "Performance monitoring interrupts" },
					      { "IWI", "IRQ work interrupts" },
					      { "RES", "Rescheduling interrupts" },
					      { "CAL", "Function call interrupts" },
					      { "TLB", "TLB shootdowns" },
					      { "TRM", "Thermal event interrupts" },
					      { "THR", "Threshold APIC interrupts" },
					      { "MCE", "Machine check exceptions" },
					      { "MCP", "Machine check polls" },
					      { "30", "PCI-MSI-edge eth0-rx-1" },
					      { "31", "PCI-MSI-edge eth0-tx-1" },
					      { "32", "PCI-MSI-edge eth1-rx-0" },
					      { "33", "PCI-MSI-edge eth1-tx-0" },
					      { "34", "PCI-MSI-edge nvme0q2" },
					      { "35", "PCI-MSI-edge nvme0q3" },
					      { "36", "PCI-MSI-edge i915" },
					      { "37", "PCI-MSI-edge snd_hda_intel" } };
	for (int i = 0; n_tm < 1000 && i < (int)(sizeof irq / sizeof *irq); i++)
		for (int c = 0; n_tm < 1000 && c < 8; c++)
			add("node_interrupts_total", K_COUNTER, 0, 0, 0, 3, "cpu", cpus[c], "type",
			    irq[i][0], "devices", irq[i][1]);
}

/* ---- per-series state and batches --------------------------------------------------- */

struct sstate {
	double v;
	float rate; /* counters: mean increment per scrape */
	uint32_t tmpl;
};

struct work {
	size_t n_series, per_target, n_targets;
	struct sstate *st;
	int64_t *offset_ms;	 /* per target */
	char (*inst)[32];	 /* per target */
	struct ts_label *labels; /* per template: MAX_LABELS, instance value patched */
	struct ts_series_in *in; /* one batch of up to n_series entries */
	struct ts_sample *smp;	 /* one sample per entry */
};

static void work_init(struct work *w, size_t n_series)
{
	memset(w, 0, sizeof *w);
	w->n_series = n_series;
	w->per_target = n_tm;
	w->n_targets = (n_series + n_tm - 1) / n_tm;
	w->st = calloc(n_series, sizeof *w->st);
	w->offset_ms = calloc(w->n_targets, sizeof *w->offset_ms);
	w->inst = calloc(w->n_targets, sizeof *w->inst);
	w->in = calloc(n_series, sizeof *w->in);
	w->smp = calloc(n_series, sizeof *w->smp);
	w->labels = calloc(n_series * MAX_LABELS, sizeof *w->labels);
	if (!w->st || !w->offset_ms || !w->inst || !w->in || !w->smp || !w->labels)
		abort();
	rng_state = g_seed * 7919;
	for (size_t t = 0; t < w->n_targets; t++) {
		w->offset_ms[t] = (int64_t)(rnd() % SCRAPE_MS);
		snprintf(w->inst[t], sizeof w->inst[t], "10.%u.%u.%u:9100",
			 (unsigned)(t >> 16) & 255, (unsigned)(t >> 8) & 255, (unsigned)t & 255);
	}
	for (size_t i = 0; i < n_series; i++) {
		size_t t = i / n_tm;
		const struct tmpl *p = &tm[i % n_tm];
		struct sstate *s = &w->st[i];
		s->tmpl = (uint32_t)(i % n_tm);
		struct ts_label *l = &w->labels[i * MAX_LABELS];
		uint32_t n = 0;
		l[n++] = (struct ts_label){ "__name__", p->name, 8, (uint32_t)strlen(p->name) };
		for (uint32_t j = 0; j < p->n_l; j++)
			l[n++] = (struct ts_label){ p->ln[j], p->lv[j], (uint32_t)strlen(p->ln[j]),
						    (uint32_t)strlen(p->lv[j]) };
		l[n++] = (struct ts_label){ "instance", w->inst[t], 8,
					    (uint32_t)strlen(w->inst[t]) };
		l[n++] = (struct ts_label){ "job", "node", 3, 4 };
		/* Sorted by name, as Prometheus' remote write sends them (insertion sort: a
		 * handful of labels). */
		for (uint32_t a = 1; a < n; a++) {
			struct ts_label x = l[a];
			uint32_t b = a;
			while (b > 0 && strcmp(l[b - 1].name, x.name) > 0) {
				l[b] = l[b - 1];
				b--;
			}
			l[b] = x;
		}
		w->in[i].labels = l;
		w->in[i].n_labels = n;
		w->in[i].samples = &w->smp[i];
		w->in[i].n_samples = 1;
		switch (p->kind) {
		case K_CONST: s->v = unif() < 0.5 ? 1 : floor(unif() * 1e6) * 4096; break;
		case K_COUNTER:
			s->rate = unif() < 0.3 ? 0 : (float)pow(10, unif() * 6);
			s->v = floor(unif() * 1e9);
			break;
		case K_CPU:
		case K_SECONDS:
			s->rate = (float)(p->lo * 15 * (0.5 + unif()));
			s->v = round(unif() * 1e6 / p->q) * p->q;
			break;
		case K_GAUGE: s->v = round((p->lo + unif() * (p->hi - p->lo)) / p->q) * p->q; break;
		default: s->v = p->lo; break;
		}
	}
}

static void work_fini(struct work *w)
{
	free(w->st);
	free(w->offset_ms);
	free(w->inst);
	free(w->in);
	free(w->smp);
	free(w->labels);
}

/* Fills the samples of target t's series for scrape round r. */
static void gen_target(struct work *w, size_t t, int64_t r)
{
	int64_t ts = T0_MS + r * SCRAPE_MS + w->offset_ms[t];
	if (g_jitter_ms)
		ts += (int64_t)(rnd() % (uint64_t)(2 * g_jitter_ms + 1)) - g_jitter_ms;
	size_t end = (t + 1) * w->per_target < w->n_series ? (t + 1) * w->per_target : w->n_series;
	for (size_t i = t * w->per_target; i < end; i++) {
		struct sstate *s = &w->st[i];
		const struct tmpl *p = &tm[s->tmpl];
		switch (p->kind) {
		case K_CONST: break;
		case K_COUNTER:
			if (s->rate > 0)
				s->v += floor(s->rate * (0.5 + unif()));
			if (rnd() % 50000 == 0)
				s->v = 0; /* restart */
			break;
		case K_CPU:
		case K_SECONDS:
			s->v = round((s->v + s->rate * (0.7 + 0.6 * unif())) / p->q) * p->q;
			break;
		case K_GAUGE: {
			uint64_t x = rnd();
			if (x % 4 == 0)
				break; /* unchanged this scrape */
			double step = p->q * (double)((int)((x >> 8) % 9) - 4);
			double v = s->v + step;
			if (v >= p->lo && v <= p->hi)
				s->v = round(v / p->q) * p->q;
			break;
		}
		case K_FULL: s->v = p->lo + unif() * (p->hi - p->lo); break;
		case K_TIME: s->v = (double)ts / 1000.0; break;
		}
		w->smp[i] = (struct ts_sample){ ts, s->v };
	}
}

/* ---- helpers ------------------------------------------------------------------------ */

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

struct du {
	uint64_t alloc, apparent;
};

static struct du g_du;
static int du_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	if (flag == FTW_F && !strstr(p, "/wal/")) {
		g_du.alloc += (uint64_t)st->st_blocks * 512;
		g_du.apparent += (uint64_t)st->st_size;
	}
	return 0;
}

static struct du du_of(const char *dir)
{
	memset(&g_du, 0, sizeof g_du);
	nftw(dir, du_entry, 16, FTW_PHYS);
	return g_du;
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "tsdbbench: %s: %s\n", what, ts_strerror(rc));
	exit(1);
}

/* out = a + "/" + b; paths that do not fit are fatal. */
static void path_join(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s/%s", a, b);
	if (n < 0 || (size_t)n >= cap)
		die("path too long", -ENAMETOOLONG);
}

/* ---- phases --------------------------------------------------------------------------- */

struct opt {
	size_t series, batch;
	double hours;
	const char *dir;
	int keep;
	int do_append, do_decode, do_disk, do_rss;
};

struct app_res {
	uint64_t samples, first_samples;
	double first_wall_ns, wall_ns, main_cpu_ns, bg_cpu_ns, ckpt_wall_ns, ckpt_cpu_ns;
	uint64_t n_syncs, n_checkpoints, n_flushed;
};

/* Appends hours of scrapes to db, `batch` series per ts_db_append (0: whole round). */
static void run_append(struct ts_db *db, struct work *w, double hours, size_t batch,
		       struct app_res *ar)
{
	memset(ar, 0, sizeof *ar);
	int64_t rounds = (int64_t)(hours * 3600000.0 / SCRAPE_MS) + 1;
	struct ts_append_result res;
	if (!batch || batch > w->n_series)
		batch = w->n_series;
	rng_state = g_seed * 104729;
	double proc0 = 0, thr0 = 0;
	for (int64_t r = 0; r < rounds; r++) {
		if (r == 1) { /* round 0 created the series; time existing series only */
			proc0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
			thr0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
		}
		for (size_t t = 0; t < w->n_targets; t++)
			gen_target(w, t, r);
		for (size_t off = 0; off < w->n_series; off += batch) {
			size_t n = w->n_series - off < batch ? w->n_series - off : batch;
			double a = now_ns(CLOCK_MONOTONIC);
			int rc = ts_db_append(db, w->in + off, n, &res, NULL);
			double b = now_ns(CLOCK_MONOTONIC);
			if (rc)
				die("ts_db_append", rc);
			if (res.n_appended != n)
				fprintf(stderr,
					"tsdbbench: round %" PRId64 ": %" PRIu64
					" of %zu appended: %s\n",
					r, res.n_appended, n, res.first_err_msg);
			if (r == 0) {
				ar->first_wall_ns += b - a;
				ar->first_samples += res.n_appended;
			} else {
				ar->wall_ns += b - a;
				ar->samples += res.n_appended;
			}
		}
	}
	/* The generator's CPU is in thr; gen_cost_ns() measures it apart for subtraction. */
	double a = now_ns(CLOCK_MONOTONIC), ta = now_ns(CLOCK_THREAD_CPUTIME_ID);
	int rc = ts_db_checkpoint(db);
	if (rc)
		die("ts_db_checkpoint", rc);
	ar->ckpt_wall_ns = now_ns(CLOCK_MONOTONIC) - a;
	ar->ckpt_cpu_ns = now_ns(CLOCK_THREAD_CPUTIME_ID) - ta;
	double thr = now_ns(CLOCK_THREAD_CPUTIME_ID) - thr0;
	double proc = now_ns(CLOCK_PROCESS_CPUTIME_ID) - proc0;
	ar->main_cpu_ns = thr;
	ar->bg_cpu_ns = proc - thr;
	struct ts_db_stats st;
	ts_db_stats(db, &st);
	ar->n_syncs = st.wal.n_syncs;
	ar->n_checkpoints = st.n_checkpoints;
	ar->n_flushed = st.n_chunks_flushed;
}

/* CPU the generator alone takes for the same rounds (subtracted from the main thread). */
static double gen_cost_ns(struct work *w, double hours)
{
	int64_t rounds = (int64_t)(hours * 3600000.0 / SCRAPE_MS) + 1;
	rng_state = g_seed * 104729;
	double t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	for (int64_t r = 0; r < rounds; r++)
		for (size_t t = 0; t < w->n_targets; t++)
			gen_target(w, t, r);
	double ns = now_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	return ns * (double)(rounds - 1) / (double)rounds;
}

static void print_append(const char *label, const struct app_res *ar, double gen_ns)
{
	double main_cpu = ar->main_cpu_ns - gen_ns;
	double n = (double)ar->samples;
	printf("%-34s %10.1f %10.1f %10.1f %10.1f %9.0f %6" PRIu64 " %5" PRIu64 "\n", label,
	       (ar->wall_ns + ar->ckpt_wall_ns) / n, main_cpu / n, ar->bg_cpu_ns / n,
	       (main_cpu + ar->bg_cpu_ns) / n, ar->ckpt_wall_ns / 1e6, ar->n_syncs,
	       ar->n_checkpoints);
}

static struct ts_db *open_db(const char *dir, enum ts_wal_sync sync)
{
	struct ts_db_opts o;
	memset(&o, 0, sizeof o);
	o.sync = sync;
	struct ts_db *db;
	int rc = ts_db_open(dir, &o, &db);
	if (rc)
		die("ts_db_open", rc);
	return db;
}

static void phase_decode_disk(const struct opt *op, const char *dir, uint64_t n_samples)
{
	double a = now_ns(CLOCK_MONOTONIC);
	struct ts_db *db = open_db(dir, TS_WAL_SYNC_NEVER);
	double open_ms = (now_ns(CLOCK_MONOTONIC) - a) / 1e6;
	struct ts_matcher m = { TS_MATCH_RE, "__name__", ".+" };
	struct ts_series_set *set;
	char msg[128];
	if (op->do_decode) {
		double best_it = 1e300, best_all = 1e300, best_raw = 1e300;
		uint64_t n = 0, n_raw = 0, sel_ns = 0;
		for (int rep = 0; rep < 3; rep++) {
			double t0 = now_ns(CLOCK_MONOTONIC);
			int rc = ts_db_select(db, &m, 1, INT64_MIN, INT64_MAX, NULL, &set, msg,
					      sizeof msg);
			if (rc)
				die("ts_db_select", rc);
			double t1 = now_ns(CLOCK_MONOTONIC);
			sel_ns = (uint64_t)(t1 - t0);
			double it_ns = 0, sum = 0;
			n = 0;
			for (size_t i = 0; i < ts_series_set_len(set); i++) {
				struct ts_iter *it;
				double x = now_ns(CLOCK_MONOTONIC);
				if ((rc = ts_iter_new(set, i, &it)))
					die("ts_iter_new", rc);
				while ((rc = ts_iter_next(it)) == 1) {
					int64_t t;
					double v;
					ts_iter_at(it, &t, &v);
					sum += v;
					n++;
				}
				if (rc < 0)
					die("ts_iter_next", rc);
				ts_iter_free(it);
				it_ns += now_ns(CLOCK_MONOTONIC) - x;
			}
			double t2 = now_ns(CLOCK_MONOTONIC);
			/* Raw XOR decode of the same chunks, no merging iterator. */
			n_raw = 0;
			double raw_ns = 0;
			for (size_t i = 0; i < ts_series_set_len(set); i++) {
				struct ts_chunk_it *ci;
				struct ts_chunk_ref c;
				if ((rc = ts_chunk_it_new(set, i, &ci)))
					die("ts_chunk_it_new", rc);
				double x = now_ns(CLOCK_MONOTONIC);
				while (ts_chunk_it_next(ci, &c) == 1) {
					struct ts_xor_it xi;
					ts_xor_it_init(&xi, c.data, c.len);
					while (ts_xor_next(&xi) == 1) {
						sum += (double)xi.v;
						n_raw++;
					}
				}
				raw_ns += now_ns(CLOCK_MONOTONIC) - x;
				ts_chunk_it_free(ci);
			}
			ts_series_set_free(set);
			if (sum == 1.2345)
				printf(" ");
			if (it_ns < best_it)
				best_it = it_ns;
			if (t2 - t0 < best_all)
				best_all = t2 - t0;
			if (raw_ns < best_raw)
				best_raw = raw_ns;
		}
		printf("\n(b) decode after close + reopen (open took %.0f ms; best of 3)\n",
		       open_ms);
		printf("    samples read %" PRIu64 " (appended %" PRIu64 ")\n", n, n_samples);
		printf("    select + iterate all, ns/sample        %8.2f  (select alone %.1f ms)\n",
		       best_all / (double)n, (double)sel_ns / 1e6);
		printf("    ts_iter_new + ts_iter_next, ns/sample  %8.2f\n", best_it / (double)n);
		printf("    raw ts_xor_next over chunks, ns/sample %8.2f  (%" PRIu64 " samples)\n",
		       best_raw / (double)n_raw, n_raw);
	}
	if (op->do_disk) {
		int rc = ts_db_select(db, &m, 1, INT64_MIN, INT64_MAX, NULL, &set, msg, sizeof msg);
		if (rc)
			die("ts_db_select", rc);
		uint64_t payload = 0, n_chunks = 0, n = 0;
		for (size_t i = 0; i < ts_series_set_len(set); i++) {
			struct ts_chunk_it *ci;
			struct ts_chunk_ref c;
			if ((rc = ts_chunk_it_new(set, i, &ci)))
				die("ts_chunk_it_new", rc);
			while (ts_chunk_it_next(ci, &c) == 1) {
				payload += c.len;
				n += c.n_samples;
				n_chunks++;
			}
			ts_chunk_it_free(ci);
		}
		ts_series_set_free(set);
		struct ts_db_stats st;
		ts_db_stats(db, &st);
		char p[PATH_MAX];
		struct du all = du_of(dir);
		path_join(p, sizeof p, dir, "index.mdb");
		struct du idx = du_of(p);
		path_join(p, sizeof p, dir, "raw");
		struct du raw = du_of(p);
		double ns = (double)n;
		printf("\n(c) disk after flush (WAL excluded), %" PRIu64 " samples in %" PRIu64
		       " chunks (%.1f samples/chunk)\n",
		       n, n_chunks, ns / (double)n_chunks);
		printf("    %-28s %12s %12s\n", "", "bytes", "bytes/sample");
		printf("    %-28s %12" PRIu64 " %12.3f\n", "LMDB files, du (allocated)", all.alloc,
		       (double)all.alloc / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "LMDB files, apparent size",
		       all.apparent, (double)all.apparent / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "  partitions (raw/), du", raw.alloc,
		       (double)raw.alloc / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "  partitions, pages in use",
		       st.partitions_bytes, (double)st.partitions_bytes / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "  index.mdb, du", idx.alloc,
		       (double)idx.alloc / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "  index.mdb, pages in use",
		       st.index_bytes, (double)st.index_bytes / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "XOR payload (chunk lengths)", payload,
		       (double)payload / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "chunk headers+keys (48 B each)",
		       n_chunks * 48, (double)(n_chunks * 48) / ns);
		printf("    overhead share of du: %.1f%% (everything but XOR payload)\n",
		       100.0 * (1.0 - (double)payload / (double)all.alloc));
		/* What the same data takes once its partitions are closed and rewritten (the
		 * server does it in the background; tsdbctl-style maintenance calls it). */
		ts_db_compact(db);
		ts_db_stats(db, &st);
		all = du_of(dir);
		path_join(p, sizeof p, dir, "raw");
		raw = du_of(p);
		printf("    after ts_db_compact:\n");
		printf("    %-28s %12" PRIu64 " %12.3f\n", "LMDB files, du (allocated)", all.alloc,
		       (double)all.alloc / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "  partitions (raw/), du", raw.alloc,
		       (double)raw.alloc / ns);
		printf("    %-28s %12" PRIu64 " %12.3f\n", "  partitions, pages in use",
		       st.partitions_bytes, (double)st.partitions_bytes / ns);
	}
	int rc = ts_db_close(db);
	if (rc)
		die("ts_db_close", rc);
}

static void phase_rss(const struct opt *op)
{
	char dir[PATH_MAX];
	path_join(dir, sizeof dir, op->dir, "rss");
	rm_tree(dir);
	struct work w;
	work_init(&w, op->series);
	/* Touch everything the bench itself owns before the baseline. */
	rng_state = g_seed;
	for (size_t t = 0; t < w.n_targets; t++)
		gen_target(&w, t, 0);
	struct ts_db *db = open_db(dir, TS_WAL_SYNC_NEVER);
	long rss0 = status_kib("VmRSS"), anon0 = status_kib("RssAnon");
	struct ts_append_result res;
	double a = now_ns(CLOCK_MONOTONIC);
	for (int64_t r = 0; r < 4; r++) {
		for (size_t t = 0; t < w.n_targets; t++)
			gen_target(&w, t, r);
		for (size_t off = 0; off < w.n_series; off += op->batch) {
			size_t n = w.n_series - off < op->batch ? w.n_series - off : op->batch;
			int rc = ts_db_append(db, w.in + off, n, &res, NULL);
			if (rc)
				die("ts_db_append", rc);
		}
	}
	double create_s = (now_ns(CLOCK_MONOTONIC) - a) / 1e9;
	long rss1 = status_kib("VmRSS"), anon1 = status_kib("RssAnon");
	a = now_ns(CLOCK_MONOTONIC);
	int rc = ts_db_checkpoint(db);
	if (rc)
		die("ts_db_checkpoint", rc);
	double ck_s = (now_ns(CLOCK_MONOTONIC) - a) / 1e9;
	long rss2 = status_kib("VmRSS"), anon2 = status_kib("RssAnon"), hwm = status_kib("VmHWM");
	struct ts_db_stats st;
	ts_db_stats(db, &st);
	double n = (double)op->series;
	printf("\n(d) memory: %zu series x 4 samples (created + appended in %.1f s; checkpoint %.1f s)\n",
	       op->series, create_s, ck_s);
	printf("    %-30s %10s %10s %12s\n", "", "VmRSS KiB", "RssAnon", "B/series");
	printf("    %-30s %10ld %10ld\n", "after open, before series", rss0, anon0);
	printf("    %-30s %10ld %10ld %12.0f (anon %.0f)\n", "after appending", rss1, anon1,
	       (double)(rss1 - rss0) * 1024 / n, (double)(anon1 - anon0) * 1024 / n);
	printf("    %-30s %10ld %10ld %12.0f (anon %.0f)\n", "after ts_db_checkpoint", rss2, anon2,
	       (double)(rss2 - rss0) * 1024 / n, (double)(anon2 - anon0) * 1024 / n);
	printf("    peak VmHWM %ld KiB; head bytes (open chunk buffers) %" PRIu64
	       " = %.0f B/series\n",
	       hwm, st.head_bytes, (double)st.head_bytes / n);
	rc = ts_db_close(db);
	if (rc)
		die("ts_db_close", rc);
	work_fini(&w);
	if (!op->keep)
		rm_tree(dir);
}

static void usage(void)
{
	fprintf(stderr, "usage: tsdbbench [--series N] [--hours H] [--batch N] [--jitter MS] "
			"[--seed S] [--dir D] [--only append,decode,disk,rss] [--keep]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opt op = { .series = 10000,
			  .batch = 1000,
			  .hours = 2,
			  .do_append = 1,
			  .do_decode = 1,
			  .do_disk = 1,
			  .do_rss = 1 };
	char dirbuf[PATH_MAX];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--keep") == 0) {
			op.keep = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--series") == 0)
			op.series = strtoull(v, NULL, 10);
		else if (strcmp(a, "--hours") == 0)
			op.hours = strtod(v, NULL);
		else if (strcmp(a, "--batch") == 0)
			op.batch = strtoull(v, NULL, 10);
		else if (strcmp(a, "--jitter") == 0)
			g_jitter_ms = strtoll(v, NULL, 10);
		else if (strcmp(a, "--seed") == 0)
			g_seed = strtoull(v, NULL, 0);
		else if (strcmp(a, "--dir") == 0)
			op.dir = v;
		else if (strcmp(a, "--only") == 0) {
			op.do_append = strstr(v, "append") != NULL;
			op.do_decode = strstr(v, "decode") != NULL;
			op.do_disk = strstr(v, "disk") != NULL;
			op.do_rss = strstr(v, "rss") != NULL;
		} else
			usage();
	}
	if (op.series < 1 || op.series > 1000000 || op.batch < 1 || op.hours <= 0)
		usage();
	if (!op.dir) {
		const char *t = getenv("TMPDIR");
		snprintf(dirbuf, sizeof dirbuf, "%s/tsdbbench.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(dirbuf)) {
			perror("mkdtemp");
			return 1;
		}
		op.dir = dirbuf;
	}
	ts_log_set_level(TS_LOG_WARN);
	build_templates();
	printf("tsdbbench: seed %" PRIu64 ", %zu series (%zu targets of %zu), %.2f h of 15 s "
	       "scrapes, %zu series per append, dir %s\n",
	       g_seed, op.series, (op.series + n_tm - 1) / n_tm, n_tm, op.hours, op.batch, op.dir);

	/* First, while the heap is fresh: later phases leave freed memory in malloc's
	 * arenas that new series would reuse without raising RSS. */
	if (op.do_rss)
		phase_rss(&op);

	char dir_never[PATH_MAX];
	path_join(dir_never, sizeof dir_never, op.dir, "never");
	uint64_t n_samples = 0;
	int need_data = op.do_append || op.do_decode || op.do_disk;
	if (need_data) {
		struct work w;
		work_init(&w, op.series);
		double gen = gen_cost_ns(&w, op.hours);
		printf("\n(a) append, existing series (first scrape excluded); generator cost "
		       "subtracted (%.1f ns/sample)\n",
		       gen / ((double)op.series * op.hours * 240));
		printf("%-34s %10s %10s %10s %10s %9s %6s %5s\n", "", "wall ns/s", "main cpu",
		       "bg cpu", "cpu ns/s", "ckpt ms", "syncs", "ckpts");
		struct app_res ar;
		rm_tree(dir_never);
		work_fini(&w);
		work_init(&w, op.series);
		struct ts_db *db = open_db(dir_never, TS_WAL_SYNC_NEVER);
		run_append(db, &w, op.hours, op.batch, &ar);
		n_samples = ar.samples + ar.first_samples;
		char label[64];
		snprintf(label, sizeof label, "sync=never, %zu series/append", op.batch);
		print_append(label, &ar, gen);
		double first = ar.first_wall_ns / (double)ar.first_samples;
		double a = now_ns(CLOCK_MONOTONIC);
		int rc = ts_db_close(db);
		if (rc)
			die("ts_db_close", rc);
		double close_ms = (now_ns(CLOCK_MONOTONIC) - a) / 1e6;
		if (op.do_append) {
			char dir_always[PATH_MAX];
			path_join(dir_always, sizeof dir_always, op.dir, "always");
			size_t batches[2] = { op.batch, 0 };
			for (int k = 0; k < 2; k++) {
				rm_tree(dir_always);
				work_fini(&w);
				work_init(&w, op.series);
				db = open_db(dir_always, TS_WAL_SYNC_ALWAYS);
				run_append(db, &w, op.hours, batches[k], &ar);
				if (batches[k])
					snprintf(label, sizeof label,
						 "sync=always, %zu series/append", batches[k]);
				else
					snprintf(label, sizeof label,
						 "sync=always, whole round/append");
				print_append(label, &ar, gen);
				if ((rc = ts_db_close(db)))
					die("ts_db_close", rc);
				if (!op.keep)
					rm_tree(dir_always);
			}
			printf("    series creation (first scrape, sync=never): %.0f ns/series; "
			       "close (final checkpoint) %.0f ms\n",
			       first, close_ms);
			printf("    wall ns/s: time inside ts_db_append + the final ts_db_checkpoint; "
			       "cpu: appending thread (minus generator) + background threads\n");
		}
		work_fini(&w);
		if (op.do_decode || op.do_disk)
			phase_decode_disk(&op, dir_never, n_samples);
	}
	if (!op.keep)
		rm_tree(op.dir);
	return 0;
}
