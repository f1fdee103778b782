#!/usr/bin/env bash
# Host tuning report for the engine's core: one line per check, `OK`, `WARN` (with a hint) or
# `SKIP` (cannot be checked here, e.g. no cpufreq on a VM). Changes nothing unless --apply.
#
#   scripts/tune-host.sh [--core N] [--config FILE] [--strict] [--apply]
#
#   --core N      the hot thread's core; default: $HFT__ENGINE__CORE, else engine.core in
#                 --config / $HFT_CONFIG / config/default.toml, else 1
#   --strict      exit 1 when any check warns (default: exit 0, it is a report)
#   --apply       as root, change only what is safe at run time: the core's frequency governor
#                 to `performance`, transparent huge pages to `madvise`; print the boot
#                 parameters to add (never edits the boot loader)
#
# Checks: isolcpus, nohz_full, rcu_nocbs (kernel command line), SMT sibling, frequency governor,
# transparent huge pages, irqbalance, IRQ affinity on the core, swap, swappiness, memlock limit,
# clock source (invariant TSC). Runs without root; exit 2 on bad usage.
set -uo pipefail

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

die_usage() {
  echo "tune-host.sh: $1 (try --help)" >&2
  exit 2
}

core=""
config=""
strict=0
apply=0
while [ $# -gt 0 ]; do
  case "$1" in
    --core)
      [ $# -ge 2 ] || die_usage "--core needs a core number"
      core=$2
      shift 2
      ;;
    --config)
      [ $# -ge 2 ] || die_usage "--config needs a file"
      config=$2
      shift 2
      ;;
    --strict) strict=1; shift ;;
    --apply) apply=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

# engine.core from a TOML file: the `core = N` line of its [engine] table, if not commented out.
config_core() {
  awk '
    /^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); section = $0; next }
    section == "[engine]" && /^[[:space:]]*core[[:space:]]*=/ {
      sub(/#.*/, ""); sub(/^[^=]*=/, ""); gsub(/[[:space:]]/, ""); print; exit
    }' "$1" 2>/dev/null
}

core_source="--core"
if [ -z "$core" ]; then
  if [ -n "${HFT__ENGINE__CORE:-}" ]; then
    core=$HFT__ENGINE__CORE core_source="HFT__ENGINE__CORE"
  else
    file=${config:-${HFT_CONFIG:-$(dirname "$0")/../config/default.toml}}
    if [ -n "$config" ] && [ ! -r "$config" ]; then
      die_usage "cannot read --config $config"
    fi
    if [ -r "$file" ]; then
      core=$(config_core "$file")
      core_source="engine.core in $file"
    fi
    if [ -z "$core" ]; then
      core=1 core_source="default"
    fi
  fi
fi
case "$core" in
  '' | *[!0-9]*) die_usage "core must be a number, got '$core'" ;;
esac
core=$((10#$core))
cpu=/sys/devices/system/cpu/cpu$core
[ -d "$cpu" ] || die_usage "core $core does not exist here (cores: $(cat /sys/devices/system/cpu/online 2>/dev/null || echo '?'))"

warnings=0
report() { # status check message [hint]
  local status=$1 check=$2 msg=$3 hint=${4:-}
  [ "$status" = WARN ] && warnings=$((warnings + 1))
  if [ -n "$hint" ]; then
    printf '%-4s %-13s %s -> %s\n' "$status" "$check" "$msg" "$hint"
  else
    printf '%-4s %-13s %s\n' "$status" "$check" "$msg"
  fi
}

# Is CPU $1 in the cpu list $2 ("1-3,5"; flags such as "managed_irq,domain," are skipped)?
in_cpulist() {
  local want=$1 item lo hi items
  IFS=, read -ra items <<<"$2"
  for item in "${items[@]}"; do
    case "$item" in
      *[!0-9-]* | '') continue ;;
      *-*) lo=${item%-*} hi=${item#*-} ;;
      *) lo=$item hi=$item ;;
    esac
    [ -n "$lo" ] && [ -n "$hi" ] || continue
    if [ "$want" -ge "$lo" ] && [ "$want" -le "$hi" ]; then
      return 0
    fi
  done
  return 1
}

# The value of kernel parameter $1 on the running kernel's command line (empty if absent).
cmdline_param() {
  local word words=()
  read -ra words </proc/cmdline 2>/dev/null
  for word in "${words[@]}"; do
    case "$word" in
      "$1="*) echo "${word#*=}"; return ;;
    esac
  done
}

boot_params="isolcpus=managed_irq,domain,$core nohz_full=$core rcu_nocbs=$core"
echo "host tuning report for the engine core $core ($core_source); $(nproc) CPUs online: $(cat /sys/devices/system/cpu/online 2>/dev/null)"

# --- kernel command line: isolation of the core ---------------------------------------------
isol=$(cmdline_param isolcpus)
if in_cpulist "$core" "$isol"; then
  report OK isolcpus "core $core isolated from the scheduler (isolcpus=$isol)"
else
  report WARN isolcpus "core $core is not in isolcpus (${isol:-absent}): other tasks may run on it" \
    "boot with $boot_params"
fi

nohz=$(cmdline_param nohz_full)
if in_cpulist "$core" "$nohz"; then
  report OK nohz_full "no scheduler tick on core $core while it runs one task (nohz_full=$nohz)"
else
  report WARN nohz_full "core $core is not in nohz_full (${nohz:-absent}): a timer tick interrupts the hot loop" \
    "boot with nohz_full=$core"
fi

rcu=$(cmdline_param rcu_nocbs)
if in_cpulist "$core" "$rcu"; then
  report OK rcu_nocbs "RCU callbacks off core $core (rcu_nocbs=$rcu)"
elif in_cpulist "$core" "$nohz"; then
  report OK rcu_nocbs "RCU callbacks off core $core (nohz_full CPUs are offloaded with CONFIG_RCU_NOCB_CPU)"
else
  report WARN rcu_nocbs "RCU callbacks may run on core $core (rcu_nocbs=${rcu:-absent})" "boot with rcu_nocbs=$core"
fi

siblings=$(cat "$cpu/topology/thread_siblings_list" 2>/dev/null)
if [ -z "$siblings" ]; then
  report SKIP smt "no topology for core $core"
elif [ "$siblings" = "$core" ]; then
  report OK smt "core $core has no SMT sibling (a VM's vCPUs may still share a physical core)"
else
  report WARN smt "core $core shares a physical core with CPUs $siblings" \
    "keep the siblings idle (isolate them too) or disable SMT (nosmt)"
fi

# --- frequency ------------------------------------------------------------------------------
gov_file=$cpu/cpufreq/scaling_governor
gov=$(cat "$gov_file" 2>/dev/null)
if [ -z "$gov" ]; then
  report SKIP governor "no cpufreq interface for core $core (a VM or fixed frequency: the host decides)"
elif [ "$gov" = performance ]; then
  report OK governor "core $core governor is performance"
else
  report WARN governor "core $core governor is $gov: frequency ramps add latency after idle" \
    "--apply, or: echo performance > $gov_file"
fi

thp_file=/sys/kernel/mm/transparent_hugepage/enabled
thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$thp_file" 2>/dev/null)
case "$thp" in
  '') report SKIP thp "no transparent huge page setting ($thp_file)" ;;
  always) report WARN thp "transparent huge pages: always (khugepaged compaction can stall the hot thread)" \
    "--apply, or: echo madvise > $thp_file" ;;
  *) report OK thp "transparent huge pages: $thp" ;;
esac

# --- interrupts -----------------------------------------------------------------------------
running() { # is a process named $1 running?
  local c
  if command -v pgrep >/dev/null 2>&1; then
    pgrep -x "$1" >/dev/null 2>&1
    return
  fi
  for c in /proc/[0-9]*/comm; do
    [ "$(cat "$c" 2>/dev/null)" = "$1" ] && return 0
  done
  return 1
}

if running irqbalance; then
  banned=""
  for f in /etc/default/irqbalance /etc/sysconfig/irqbalance; do
    [ -r "$f" ] || continue
    b=$(sed -n 's/^[[:space:]]*IRQBALANCE_BANNED_CPULIST=["'\'']\{0,1\}\([^"'\'']*\).*/\1/p' "$f" | tail -n 1)
    [ -n "$b" ] && banned=$b
  done
  if in_cpulist "$core" "$banned"; then
    report OK irqbalance "irqbalance runs with core $core banned (IRQBALANCE_BANNED_CPULIST=$banned)"
  else
    report WARN irqbalance "irqbalance is running and may move IRQs onto core $core" \
      "set IRQBALANCE_BANNED_CPULIST=$core in /etc/default/irqbalance, or stop it and pin IRQs by hand"
  fi
else
  report OK irqbalance "irqbalance is not running"
fi

total=0
on_core=0
examples=""
unreadable=0
for d in /proc/irq/[0-9]*; do
  [ -d "$d" ] || continue
  irq=${d##*/}
  if ! list=$(cat "$d/smp_affinity_list" 2>/dev/null); then
    unreadable=$((unreadable + 1))
    continue
  fi
  total=$((total + 1))
  if in_cpulist "$core" "$list"; then
    on_core=$((on_core + 1))
    [ "$on_core" -le 8 ] && examples="$examples $irq"
  fi
done
if [ "$total" -eq 0 ]; then
  report SKIP irq_affinity "cannot read /proc/irq/*/smp_affinity_list ($unreadable unreadable)"
elif [ "$on_core" -eq 0 ]; then
  report OK irq_affinity "none of $total IRQs may be delivered to core $core"
else
  [ "$on_core" -gt 8 ] && examples="$examples ..."
  report WARN irq_affinity "$on_core of $total IRQs may be delivered to core $core (IRQ$examples)" \
    "as root: echo <other cores> > /proc/irq/N/smp_affinity_list for each, or boot with isolcpus=managed_irq,…"
fi

# --- memory ---------------------------------------------------------------------------------
swap_kb=$(awk 'NR > 1 { s += $3 } END { print s + 0 }' /proc/swaps 2>/dev/null)
swap_kb=${swap_kb:-0}
if [ "$swap_kb" -gt 0 ]; then
  report WARN swap "swap is on ($swap_kb kB): a page of the engine can be swapped out" \
    "swapoff -a (and remove swap from /etc/fstab), or lock the engine's memory"
else
  report OK swap "no swap active"
fi

swappiness=$(cat /proc/sys/vm/swappiness 2>/dev/null)
if [ -z "$swappiness" ]; then
  report SKIP swappiness "cannot read /proc/sys/vm/swappiness"
elif [ "$swappiness" -le 10 ]; then
  report OK swappiness "vm.swappiness = $swappiness"
elif [ "$swap_kb" -eq 0 ]; then
  report OK swappiness "vm.swappiness = $swappiness (no swap active, so it does not apply)"
else
  report WARN swappiness "vm.swappiness = $swappiness with swap on" "sysctl -w vm.swappiness=1 (persist in /etc/sysctl.d)"
fi

memlock=$(ulimit -l 2>/dev/null)
if [ "$memlock" = unlimited ]; then
  report OK memlock "locked-memory limit unlimited (this shell)"
else
  report WARN memlock "locked-memory limit ${memlock:-?} kB in this shell" \
    "the unit sets LimitMEMLOCK=infinity; for a manual run: ulimit -l unlimited (memlock in limits.conf)"
fi

# --- clock ----------------------------------------------------------------------------------
cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
invariant=no
case "$flags" in
  *" constant_tsc"*" nonstop_tsc"* | *" nonstop_tsc"*" constant_tsc"*) invariant=yes ;;
esac
if [ -z "$cs" ]; then
  report SKIP clocksource "cannot read the current clock source"
elif [ "$cs" = tsc ] && [ "$invariant" = yes ]; then
  report OK clocksource "clock source tsc, invariant TSC (constant_tsc, nonstop_tsc)"
elif [ "$cs" = tsc ]; then
  report WARN clocksource "clock source tsc but the TSC is not flagged invariant (constant_tsc, nonstop_tsc)" \
    "timestamps may drift across frequency changes and sleep states"
else
  report WARN clocksource "clock source $cs (invariant TSC: $invariant): clock reads are slower than tsc" \
    "if the TSC is invariant, boot with clocksource=tsc tsc=reliable"
fi

echo "$warnings warning(s)"

# --- apply ----------------------------------------------------------------------------------
if [ "$apply" -eq 1 ]; then
  echo "applying the run-time changes (governor, THP):"
  failed=0
  if [ "$(id -u)" -ne 0 ]; then
    echo "  cannot apply: run as root" >&2
    failed=1
  else
    if [ -n "$gov" ] && [ "$gov" != performance ]; then
      if echo performance >"$gov_file"; then echo "  $gov_file: performance"; else failed=1; fi
    fi
    if [ "$thp" = always ]; then
      if echo madvise >"$thp_file"; then echo "  $thp_file: madvise"; else failed=1; fi
    fi
  fi
  cat <<EOF
boot parameters (not applied: edit the boot loader yourself, then reboot), e.g. on Debian/Ubuntu:
  add to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub: $boot_params
  then: update-grub && reboot      (Fedora/RHEL: grubby --update-kernel=ALL --args="$boot_params")
EOF
  [ "$failed" -eq 0 ] || exit 1
fi

if [ "$strict" -eq 1 ] && [ "$warnings" -gt 0 ]; then
  exit 1
fi
exit 0
