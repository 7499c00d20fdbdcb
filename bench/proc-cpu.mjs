// Runtime CPU for the benchmarks: what the local workerd processes they started spent, from /proc.
import { readdirSync, readFileSync } from "node:fs";

/** CPU time (user + system, ms) of the workerd processes this benchmark started, from /proc. */
export function workerdCpuMs() {
  const tick = 10; // USER_HZ is 100 on Linux
  const procs = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  const parent = new Map();
  const stats = new Map();
  for (const pid of procs) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(pid, rest[1]);
      stats.set(pid, { comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), cpu: (Number(rest[11]) + Number(rest[12])) * tick });
    } catch {
      // the process ended meanwhile
    }
  }
  const mine = (pid) => {
    for (let p = pid; p && p !== "0" && p !== "1"; p = parent.get(p)) if (p === String(process.pid)) return true;
    return false;
  };
  let total = 0;
  for (const [pid, s] of stats) if (s.comm.startsWith("workerd") && mine(pid)) total += s.cpu;
  return total;
}

