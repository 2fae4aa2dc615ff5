import type { Terminal } from '@xterm/xterm';
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { Asciicast } from './api';

export const SPEEDS = [1, 2, 4] as const;
export type Speed = (typeof SPEEDS)[number];
/** Pauses longer than this are shortened when "skip idle" is on (like asciinema's idle_time_limit). */
export const IDLE_LIMIT_S = 2;

export interface PlayerState {
  playing: boolean;
  /** Position on the (possibly idle-compressed) timeline, seconds. */
  time: number;
  duration: number;
  speed: Speed;
  skipIdle: boolean;
}

interface TimedEvent {
  t: number;
  type: 'o' | 'r';
  data: string;
}

/** The replay timeline: output and resizes, with long pauses shortened on request. */
export function timeline(cast: Asciicast, skipIdle: boolean): TimedEvent[] {
  const out: TimedEvent[] = [];
  let shift = 0;
  let prev = 0;
  for (const e of cast.events) {
    if (e.type !== 'o' && e.type !== 'r') continue;
    const gap = e.t - prev;
    if (skipIdle && gap > IDLE_LIMIT_S) shift += gap - IDLE_LIMIT_S;
    prev = e.t;
    out.push({ t: Math.max(0, e.t - shift), type: e.type, data: e.data });
  }
  return out;
}

/**
 * Plays an asciicast into an xterm: play, pause, seek (replays the output up to the position in
 * one write) and speed. Time advances with requestAnimationFrame; the UI reads the store.
 */
export class CastPlayer {
  readonly store: StoreApi<PlayerState>;
  private events: TimedEvent[];
  /** Index of the next event to write. */
  private cursor = 0;
  private raf = 0;
  private anchor = { wall: 0, time: 0 };
  private lastPublish = 0;

  constructor(
    private readonly term: Terminal,
    private readonly cast: Asciicast,
  ) {
    this.events = timeline(cast, true);
    this.store = createStore<PlayerState>()(() => ({
      playing: false,
      time: 0,
      duration: this.events.at(-1)?.t ?? 0,
      speed: 1,
      skipIdle: true,
    }));
    this.term.resize(cast.width, cast.height);
  }

  private apply(e: TimedEvent, chunks: string[]): void {
    if (e.type === 'o') {
      chunks.push(e.data);
      return;
    }
    const m = /^(\d+)x(\d+)$/.exec(e.data);
    if (!m) return;
    if (chunks.length) this.term.write(chunks.splice(0).join(''));
    this.term.resize(Math.max(2, Number(m[1])), Math.max(1, Number(m[2])));
  }

  /** Writes every event up to `time` that has not been written yet. */
  private advanceTo(time: number): void {
    const chunks: string[] = [];
    while (this.cursor < this.events.length && this.events[this.cursor]!.t <= time) {
      this.apply(this.events[this.cursor]!, chunks);
      this.cursor++;
    }
    if (chunks.length) this.term.write(chunks.join(''));
  }

  private tick = (now: number) => {
    const s = this.store.getState();
    if (!s.playing) return;
    const time = Math.min(s.duration, this.anchor.time + ((now - this.anchor.wall) / 1000) * s.speed);
    this.advanceTo(time);
    const ended = time >= s.duration;
    // The slider does not need 60 updates a second.
    if (ended || now - this.lastPublish > 80) {
      this.lastPublish = now;
      this.store.setState({ time, playing: !ended });
    }
    if (!ended) this.raf = requestAnimationFrame(this.tick);
  };

  play(): void {
    const s = this.store.getState();
    if (s.playing) return;
    if (s.time >= s.duration) this.seek(0);
    this.anchor = { wall: performance.now(), time: this.store.getState().time };
    this.store.setState({ playing: true });
    this.raf = requestAnimationFrame(this.tick);
  }

  pause(): void {
    cancelAnimationFrame(this.raf);
    const s = this.store.getState();
    if (!s.playing) return;
    const time = Math.min(
      s.duration,
      this.anchor.time + ((performance.now() - this.anchor.wall) / 1000) * s.speed,
    );
    this.advanceTo(time);
    this.store.setState({ playing: false, time });
  }

  toggle(): void {
    if (this.store.getState().playing) this.pause();
    else this.play();
  }

  /** Jumps to `time`: forwards by writing what is missing, backwards by replaying from the start. */
  seek(time: number): void {
    const s = this.store.getState();
    const t = Math.max(0, Math.min(s.duration, time));
    if (t < s.time || this.cursor === 0) {
      this.term.reset();
      this.term.resize(this.cast.width, this.cast.height);
      this.cursor = 0;
    }
    this.advanceTo(t);
    this.anchor = { wall: performance.now(), time: t };
    this.store.setState({ time: t });
  }

  setSpeed(speed: Speed): void {
    const s = this.store.getState();
    if (s.playing) {
      const time = this.anchor.time + ((performance.now() - this.anchor.wall) / 1000) * s.speed;
      this.anchor = { wall: performance.now(), time };
    }
    this.store.setState({ speed });
  }

  setSkipIdle(skipIdle: boolean): void {
    const wasPlaying = this.store.getState().playing;
    this.pause();
    // Keep the position on the real clock: find the real time of the current position.
    const current = this.events[this.cursor - 1];
    const realIndex = this.cursor - 1;
    this.events = timeline(this.cast, skipIdle);
    const duration = this.events.at(-1)?.t ?? 0;
    const time = current && realIndex >= 0 ? (this.events[realIndex]?.t ?? 0) : 0;
    this.store.setState({ skipIdle, duration, time });
    if (wasPlaying) this.play();
  }

  dispose(): void {
    cancelAnimationFrame(this.raf);
  }
}

export function clock(seconds: number): string {
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return `${m}:${rest.toFixed(1).padStart(4, '0')}`;
}
