// The scheduler of the CUDA emulation layer: real OS threads play the threads of one block at a time.
//
// A launch runs its blocks one after another. Thread t of a block is pool worker t, but a run token lets
// exactly one worker run at a time: it runs until it reaches a barrier or returns, then passes the token on.
// __syncthreads() opens when every live thread of the block has reached it; they then run in a new order (a
// permutation seeded by the block and the phase). A warp's shuffle opens as soon as the last live lane of the
// warp arrives, and those lanes run next, ahead of the threads still waiting for their turn — warps move on
// independently, as on a GPU. A thread that returns leaves every barrier's count — except a warp collective's
// (wmma): that barrier opens only when all 32 lanes of the warp wait in the same call. So a missing
// __syncthreads() shows deterministically: some thread runs past it before the others have written what it
// reads (or reads after another has overwritten it) — and __shared__ memory starts every block as NaN.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

namespace {

enum class Stop : unsigned char { running, at_syncthreads, at_syncwarp, exited };

struct Abandoned {};  // thrown out of a barrier when the launch is given up (a deadlock)

// A count a thread sleeps on until another thread bumps it. Plain futexes: handing the token over costs one
// wake and one wait, about 5 µs on our 2-core machines.
struct Signal {
    std::atomic<unsigned> count{0};
    unsigned now() const { return count.load(std::memory_order_acquire); }
    void bump() {
        count.fetch_add(1, std::memory_order_release);
        syscall(SYS_futex, &count, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
    void await_change(unsigned seen) {
        while (now() == seen) syscall(SYS_futex, &count, FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
    }
};

struct Launch {
    ninx_emu_thread_body body;
    void** args;
    ninx_emu_coords coords;            // the running block's index and the sizes; each worker adds its thread's
    unsigned threads;                  // per block
    unsigned block_number;             // linear index of the running block
    std::vector<Stop> stop;            // per thread of the running block
    std::vector<unsigned> shuffles;    // per thread: shuffles done, choosing its warp's slot buffer
    std::vector<unsigned long long> slots;  // per warp: 2 buffers of 32 lanes
    std::vector<ninx_emu_collective*> collective;  // per thread at the warp barrier: its collective call, or null
    std::vector<unsigned> order;       // who runs, in turn
    size_t next = 0;                   // order[next] runs when the current thread stops
    unsigned phase = 0;                // barriers opened so far in this block: seeds each new order
    bool abandoned = false;
    std::string error;
};

std::mutex one_launch_at_a_time;
// wakeups[t] wakes worker t. Never freed: the detached workers sleep on them until the process ends.
std::vector<std::unique_ptr<Signal>>& wakeups = *new std::vector<std::unique_ptr<Signal>>;
Signal block_done;                     // wakes the launching thread
Launch* running;
thread_local unsigned self;            // this worker's thread number in the block

// Fisher–Yates with a xorshift generator: the same order for the same block and phase, every run.
void permute(std::vector<unsigned>& order, unsigned long long seed) {
    unsigned long long state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (size_t i = order.size(); i > 1; --i) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        std::swap(order[i - 1], order[state % i]);
    }
}

// Let threads run, in a permuted order, right after the current one: they are the next in turn.
void schedule_next(Launch& L, std::vector<unsigned> threads) {
    permute(threads, (unsigned long long)L.block_number << 32 | ++L.phase);
    for (unsigned t : threads) L.stop[t] = Stop::running;
    L.order.insert(L.order.begin() + L.next, threads.begin(), threads.end());
}

// Give up the launch: every thread throws Abandoned as it next wakes. The first reason given is the one reported.
void abandon(Launch& L, const std::string& why) {
    if (L.error.empty()) L.error = why;
    L.abandoned = true;
}

std::string pointer_text(const void* p) {
    char text[32];
    std::snprintf(text, sizeof text, "%p", p);
    return text;
}

const char* layout_text(int layout) { return layout == 0 ? "row-major" : layout == 1 ? "column-major" : "none"; }

bool same_text(const char* a, const char* b) { return a == b || (a && b && std::strcmp(a, b) == 0); }

// Why the lanes of `warp`, all at the warp barrier and one of them (lane `by`) in a collective call, may not
// go on; empty when all 32 lanes make that call alike.
std::string disagreement(const Launch& L, unsigned warp, unsigned by) {
    const ninx_emu_collective& ref = *L.collective[by];
    const std::string where = std::string(ref.call) + " in block " + std::to_string(L.block_number) + ", warp " +
                              std::to_string(warp) + ": ";
    const std::string rule = "; all 32 lanes of a warp make each wmma call together, with the same arguments";
    const std::string them = " where lane " + std::to_string(by % 32) + " passes ";
    unsigned missing = 0;
    std::string first_missing;
    for (unsigned lane = 0; lane < 32; ++lane) {
        const unsigned t = warp * 32 + lane;
        const std::string who = "lane " + std::to_string(lane);
        if (t >= L.threads || L.stop[t] == Stop::exited) {
            if (!missing++) first_missing = who + (t >= L.threads ? " is past the end of the block" : " returned");
            continue;
        }
        const ninx_emu_collective* c = L.collective[t];
        if (!c) return where + who + " is at a warp shuffle instead" + rule;
        if (!same_text(c->call, ref.call)) return where + who + " is at " + c->call + " instead" + rule;
        if (!same_text(c->fragment, ref.fragment))
            return where + who + " passes a " + c->fragment + " fragment" + them + "a " + ref.fragment + " one" + rule;
        if (c->pointer != ref.pointer)
            return where + who + " passes pointer " + pointer_text(c->pointer) + them + pointer_text(ref.pointer) +
                   rule;
        if (c->ldm != ref.ldm)
            return where + who + " passes ldm " + std::to_string(c->ldm) + them + std::to_string(ref.ldm) + rule;
        if (c->layout != ref.layout)
            return where + who + " passes layout " + layout_text(c->layout) + them + layout_text(ref.layout) + rule;
    }
    if (missing)
        return where + std::to_string(missing) + " of its 32 lanes never make the call (" + first_missing + ")" + rule;
    return "";
}

// When every live lane of the warp waits at the warp barrier, it opens. If a lane waits in a collective call,
// all 32 must wait in the same call alike (else the launch is given up); each then learns where the others are.
void open_warp_barrier(Launch& L, unsigned warp) {
    std::vector<unsigned> lanes;
    const unsigned none = -1u;
    unsigned collective = none;
    for (unsigned t = warp * 32; t < L.threads && t < warp * 32 + 32; ++t) {
        if (L.stop[t] == Stop::exited) continue;
        if (L.stop[t] != Stop::at_syncwarp) return;
        lanes.push_back(t);
        if (L.collective[t] && collective == none) collective = t;
    }
    if (lanes.empty()) return;
    if (collective != none && !L.abandoned) {
        std::string why = disagreement(L, warp, collective);
        if (!why.empty()) abandon(L, why);
        else
            for (unsigned t : lanes) {
                L.collective[t]->lane = t % 32;
                for (unsigned lane = 0; lane < 32; ++lane) L.collective[t]->warp[lane] = L.collective[warp * 32 + lane];
            }
    }
    schedule_next(L, lanes);
}

// Nobody is left to run: open __syncthreads() if every live thread waits there. Returns false when no live
// thread is left (the block is done).
bool open_syncthreads(Launch& L) {
    std::vector<unsigned> live;
    bool all_at_syncthreads = true;
    for (unsigned t = 0; t < L.threads; ++t)
        if (L.stop[t] != Stop::exited) live.push_back(t), all_at_syncthreads &= L.stop[t] == Stop::at_syncthreads;
    if (live.empty()) return false;
    if (!all_at_syncthreads) {  // some wait at __syncthreads(), some at the warp barrier: wake them all to unwind
        std::string other = "a warp shuffle";
        for (unsigned t : live)
            if (L.stop[t] == Stop::at_syncwarp && L.collective[t]) other = L.collective[t]->call;
        abandon(L, "deadlock in block " + std::to_string(L.block_number) + ": threads wait at __syncthreads() and "
                   "at " + other + ", and neither barrier can open");
    }
    L.order.clear();
    L.next = 0;
    schedule_next(L, live);
    return true;
}

// Called by the one running thread once it has stopped: wake the next thread, or the launcher.
void pass_token(Launch& L) {
    if (L.next == L.order.size() && !open_syncthreads(L)) return block_done.bump();
    wakeups[L.order[L.next++]]->bump();
}

void stop_at(Stop why) {
    Launch& L = *running;
    Signal& me = *wakeups[self];
    L.stop[self] = why;
    if (why == Stop::at_syncwarp) open_warp_barrier(L, self / 32);
    unsigned seen = me.now();
    pass_token(L);
    me.await_change(seen);
    if (L.abandoned) throw Abandoned{};
}

void worker(unsigned t, Signal& me) {
    self = t;
    unsigned seen = 0;
    for (;;) {
        me.await_change(seen);  // a block starts
        Launch& L = *running;
        ninx_emu_coords at = L.coords;
        unsigned bx = at.block_dim[0], by = at.block_dim[1];
        at.thread[0] = t % bx, at.thread[1] = t / bx % by, at.thread[2] = t / (bx * by);
        try {
            L.body(&at, L.args);
        } catch (const Abandoned&) {
        }
        L.stop[t] = Stop::exited;
        open_warp_barrier(L, t / 32);  // its lanes may have been waiting only for this one
        seen = me.now();
        pass_token(L);
    }
}

std::string check_configuration(const unsigned grid[3], const unsigned block[3]) {
    auto text = [](const unsigned d[3]) {
        return "(" + std::to_string(d[0]) + ", " + std::to_string(d[1]) + ", " + std::to_string(d[2]) + ")";
    };
    unsigned long long threads = (unsigned long long)block[0] * block[1] * block[2];
    if (threads == 0 || threads > 1024 || block[2] > 64)
        return "invalid block " + text(block) + ": at most 1024 threads, blockDim.z at most 64, none zero";
    if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0 || grid[0] > 2147483647u || grid[1] > 65535 || grid[2] > 65535)
        return "invalid grid " + text(grid) + ": gridDim.x at most 2^31 - 1, y and z at most 65535, none zero";
    return "";
}

// Run one block to its end: every thread starts in a permuted order, holding the token in turn.
void run_block(Launch& L, unsigned x, unsigned y, unsigned z, char* shared_begin, char* shared_end) {
    std::memset(shared_begin, 0xFF, shared_end - shared_begin);  // NaN as float and as double
    L.coords.block[0] = x, L.coords.block[1] = y, L.coords.block[2] = z;
    L.block_number = (z * L.coords.grid_dim[1] + y) * L.coords.grid_dim[0] + x;
    L.stop.assign(L.threads, Stop::running);
    L.shuffles.assign(L.threads, 0);
    L.collective.assign(L.threads, nullptr);
    L.slots.assign((L.threads + 31) / 32 * 64, 0);
    L.order.resize(L.threads);
    for (unsigned t = 0; t < L.threads; ++t) L.order[t] = t;
    permute(L.order, (unsigned long long)L.block_number << 32);
    L.phase = 0;
    L.next = 1;
    unsigned seen = block_done.now();
    wakeups[L.order[0]]->bump();
    block_done.await_change(seen);
}

}  // namespace

extern "C" void ninx_emu_syncthreads() { stop_at(Stop::at_syncthreads); }

extern "C" void ninx_emu_syncwarp() {
    running->collective[self] = nullptr;
    stop_at(Stop::at_syncwarp);
}

extern "C" void ninx_emu_warp_collective(ninx_emu_collective* call) {
    running->collective[self] = call;
    stop_at(Stop::at_syncwarp);
}

extern "C" void ninx_emu_fail(const char* message) {
    abandon(*running, message);
    throw Abandoned{};
}

// Two buffers per warp, used by alternate shuffles: a lane may write its next shuffle's value while a slower
// lane still reads this one's, so one barrier per shuffle is enough.
extern "C" unsigned long long* ninx_emu_lanes() {
    Launch& L = *running;
    return &L.slots[(self / 32 * 2 + L.shuffles[self]++ % 2) * 32];
}

extern "C" int ninx_emu_run(const unsigned grid[3], const unsigned block[3], ninx_emu_thread_body body,
                            void** args, char* shared_begin, char* shared_end, char* error, size_t error_size) {
    std::lock_guard<std::mutex> lock(one_launch_at_a_time);
    Launch L;
    L.error = check_configuration(grid, block);
    L.body = body, L.args = args;
    L.threads = block[0] * block[1] * block[2];
    for (int d = 0; d < 3; ++d) L.coords.block_dim[d] = block[d], L.coords.grid_dim[d] = grid[d];
    while (L.error.empty() && wakeups.size() < L.threads) {
        wakeups.push_back(std::make_unique<Signal>());
        std::thread(worker, (unsigned)wakeups.size() - 1, std::ref(*wakeups.back())).detach();
    }
    running = &L;
    for (unsigned z = 0; z < grid[2] && L.error.empty(); ++z)
        for (unsigned y = 0; y < grid[1] && L.error.empty(); ++y)
            for (unsigned x = 0; x < grid[0] && L.error.empty(); ++x) run_block(L, x, y, z, shared_begin, shared_end);
    running = nullptr;
    std::snprintf(error, error_size, "%s", L.error.c_str());
    return L.error.empty() ? 0 : -1;
}
