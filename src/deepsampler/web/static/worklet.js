// The live mode's AudioWorklet: cuts the microphone into blocks for the websocket and plays
// the separated blocks that come back, after a small jitter buffer.
class LiveProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions;
    this.block = opts.block;
    this.prebuffer = opts.prebuffer;
    this.buf = new Float32Array(this.block);
    this.fill = 0;
    this.queue = [];
    this.head = 0; // read position in queue[0]
    this.queued = 0; // samples waiting to play
    this.playing = false;
    this.underruns = 0;
    this.port.onmessage = (e) => {
      this.queue.push(e.data);
      this.queued += e.data.length;
    };
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) {
      for (let i = 0; i < input.length; i++) {
        this.buf[this.fill++] = input[i];
        if (this.fill === this.block) {
          this.port.postMessage({ type: "block", samples: this.buf }, [this.buf.buffer]);
          this.buf = new Float32Array(this.block);
          this.fill = 0;
        }
      }
    }
    const out = outputs[0][0];
    if (!this.playing && this.queued >= this.prebuffer) this.playing = true;
    let short = false;
    for (let i = 0; i < out.length; i++) {
      if (this.playing && this.queued > 0) {
        const first = this.queue[0];
        out[i] = first[this.head++];
        this.queued--;
        if (this.head === first.length) {
          this.queue.shift();
          this.head = 0;
        }
      } else {
        out[i] = 0;
        short = this.playing;
      }
    }
    if (short) {
      // ran dry: count it, and wait for the jitter buffer to fill again
      this.underruns++;
      this.playing = false;
      this.port.postMessage({ type: "underrun", count: this.underruns });
    }
    return true;
  }
}

registerProcessor("deepsampler-live", LiveProcessor);
