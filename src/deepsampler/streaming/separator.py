"""Streaming separation with explicit state: samples in, separated samples out, frame by frame.

The engine reuses the model's own modules (their ``step`` forms for the causal convolutions,
``Attention.project`` / ``Attention.attend`` with a K/V cache for the time attention), so its
output equals the offline forward pass of the same causal model, delayed by exactly
``latency_samples``: ``stream(x)[latency:] == model(x)`` (to float rounding).

Timing: STFT frame ``t`` covers zero-padded samples ``[t*hop, t*hop + n_fft)`` (the offline
STFT's centring pad of ``n_fft/2`` zeros); frame ``t`` is synthesised once frame
``t + lookahead`` has been analysed, which finishes the padded samples ``[t*hop, (t+1)*hop)``.
"""

from __future__ import annotations

import torch
from einops import rearrange

from deepsampler.audio.stft import ENVELOPE_FLOOR, end_pad
from deepsampler.models.deepsampler import DeepSampler
from deepsampler.streaming.state import StreamState


class StreamingSeparator:
    """Run a causal :class:`DeepSampler` on a stream.

    ``step`` takes any number of new samples ``[b, c, m]`` (or ``[c, m]``) and returns exactly
    ``m`` samples ``[b, s, c, m]`` of the separated stream, which is the offline output delayed
    by ``latency_samples`` (zeros before it); ``flush`` returns the last ``latency_samples``.
    """

    def __init__(self, model: DeepSampler) -> None:
        if not model.config.causal:
            raise ValueError("streaming needs a causal model (config.causal = True)")
        self.model = model.eval()
        self.config = model.config
        self.window = model.stft.window

    # ---- what it is ------------------------------------------------------------------------
    @property
    def latency_samples(self) -> int:
        """Fixed delay of the output stream: analysis window + look-ahead frames x hop."""
        return self.config.latency_samples

    @property
    def latency_ms(self) -> float:
        return self.config.latency_ms

    @property
    def hop(self) -> int:
        return self.config.hop

    # ---- state -----------------------------------------------------------------------------
    def init_state(self, batch: int = 1) -> StreamState:
        """A fresh state for ``batch`` independent streams."""
        cfg, model = self.config, self.model
        dev = self.window.device
        c, n = cfg.audio_channels, cfg.n_fft
        s = len(cfg.sources)
        # a dummy frame gives every level's shape for the conv states
        x = torch.zeros(batch, c, cfg.freq_bins, 1, device=dev)
        conv = []
        for level in model.encoder:
            x = level.freq(x)
            conv.append(level.time.initial_state(x))
        enc_shapes = [st.shape for st in conv]
        for i, level in enumerate(model.decoder, start=1):
            conv.append(
                level.time.initial_state(torch.zeros(*enc_shapes[i - 1][:-1], 1, device=dev))
            )
        bn = batch * cfg.num_bands
        heads, e = cfg.heads, cfg.dim // cfg.heads
        layers = len(model.latent.blocks)
        return StreamState(
            inbuf=torch.zeros(batch, c, n // 2, device=dev),
            next_frame=0,
            next_output_frame=0,
            conv=conv,
            keys=[torch.zeros(bn, heads, 0, e, device=dev) for _ in range(layers)],
            values=[torch.zeros(bn, heads, 0, e, device=dev) for _ in range(layers)],
            key_start=[0] * layers,
            pending_x=torch.zeros(bn, 0, cfg.dim, device=dev),
            pending_q=torch.zeros(bn, heads, 0, e, device=dev),
            pending_z=torch.zeros(*enc_shapes[-1][:-1], 0, device=dev),
            pending_skips=[torch.zeros(*sh[:-1], 0, device=dev) for sh in enc_shapes[:-1]],
            pending_spec=torch.zeros(batch, c, n // 2 + 1, 0, dtype=torch.complex64, device=dev),
            ola=torch.zeros(batch, s, c, n, device=dev),
            ola_weight=torch.zeros(n, device=dev),
            outq=torch.zeros(batch, s, c, self.latency_samples, device=dev),
            to_drop=n // 2,
        )

    # ---- the public calls ------------------------------------------------------------------
    @torch.inference_mode()
    def step(self, samples: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """Feed ``[b, c, m]`` (or ``[c, m]``) new samples; return ``[b, s, c, m]`` (or
        ``[s, c, m]``) separated samples and the new state (the given one is updated in place
        too: :meth:`StreamState.clone` it first to keep it)."""
        squeeze = samples.dim() == 2
        x = samples[None] if squeeze else samples
        if state.flushed:
            raise RuntimeError("this stream was flushed; start a new one with init_state()")
        if (
            x.dim() != 3
            or x.shape[1] != self.config.audio_channels
            or x.shape[0] != state.inbuf.shape[0]
        ):
            raise ValueError(
                f"expected [{state.inbuf.shape[0]}, {self.config.audio_channels}, samples], "
                f"got {list(samples.shape)}"
            )
        m = x.shape[-1]
        state.samples_in += m
        state.inbuf = torch.cat([state.inbuf, x.to(state.inbuf)], dim=-1)
        self._analyse_ready_frames(state)
        if state.outq.shape[-1] < m:  # cannot happen with latency >= n_fft + lookahead * hop
            raise AssertionError("streaming pipeline fell behind its fixed latency")
        out, state.outq = state.outq[..., :m], state.outq[..., m:]
        state.samples_out += m
        return (out[0] if squeeze else out), state

    @torch.inference_mode()
    def flush(self, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """End the stream: return its last ``latency_samples`` samples ``[b, s, c, L]``."""
        n = self.config.n_fft
        # the offline STFT's pad to a whole number of hops and its right-hand centring pad (so
        # the last frame is centred at or after the last sample); then synthesise the frames
        # still waiting
        pad = end_pad(state.samples_in, self.config.hop) + n // 2
        state.inbuf = torch.cat(
            [state.inbuf, state.inbuf.new_zeros(*state.inbuf.shape[:-1], pad)], -1
        )
        self._analyse_ready_frames(state)
        while state.next_output_frame < state.next_frame:
            self._synthesise_frame(state)
        # after the last frame every padded position of the OLA buffer is final
        self._emit(state, state.ola.shape[-1])
        total = state.samples_in + self.latency_samples
        tail = state.outq[..., : total - state.samples_out]
        state.outq = state.outq[..., :0]
        state.samples_out = total
        state.flushed = True
        return tail, state

    # ---- internals -------------------------------------------------------------------------
    def _analyse_ready_frames(self, state: StreamState) -> None:
        n, hop, la = self.config.n_fft, self.config.hop, self.config.lookahead
        while state.inbuf.shape[-1] >= n:
            self._analyse_frame(state.inbuf[..., :n], state)
            state.inbuf = state.inbuf[..., hop:]
            if state.next_frame - state.next_output_frame > la:
                self._synthesise_frame(state)

    def _analyse_frame(self, frame: torch.Tensor, state: StreamState) -> None:
        """STFT, encoder and the first time layer's projections of one frame; the rest waits
        in ``pending_*`` until the look-ahead frames have arrived."""
        model, f = self.model, state.next_frame
        spec = torch.fft.rfft(frame * self.window)[..., None]  # [b, c, F+1, 1]
        x = model.features(spec)
        skips = []
        for i, level in enumerate(model.encoder):
            x, state.conv[i] = level.step(x, state.conv[i])
            skips.append(x)
        tokens = rearrange(model.latent.split(x), "b n t d -> (b n) t d")
        attn = model.latent.blocks[0].time.attn
        q, k, v = attn.project(tokens, torch.tensor([f], device=x.device))
        state.keys[0] = torch.cat([state.keys[0], k], dim=2)
        state.values[0] = torch.cat([state.values[0], v], dim=2)
        state.pending_x = torch.cat([state.pending_x, tokens], dim=1)
        state.pending_q = torch.cat([state.pending_q, q], dim=2)
        state.pending_z = torch.cat([state.pending_z, x], dim=-1)
        state.pending_skips = [
            torch.cat([p, s], dim=-1) for p, s in zip(state.pending_skips, skips[:-1], strict=True)
        ]
        state.pending_spec = torch.cat([state.pending_spec, spec], dim=-1)
        state.next_frame += 1

    def _attend_cached(
        self, l: int, x: torch.Tensor, q: torch.Tensor, index: int, state: StreamState
    ) -> torch.Tensor:
        """Finish one time-attention layer for query frame ``index`` over layer ``l``'s cache,
        with the offline mask (keys in ``(index - window, index + lookahead]``)."""
        layer = self.model.latent.blocks[l].time
        lookahead = self.config.lookahead if l == 0 else 0  # look-ahead: first layer only
        keys, values, start = state.keys[l], state.values[l], state.key_start[l]
        window = self.config.attn_window
        pos = start + torch.arange(keys.shape[2], device=keys.device)
        mask = (pos <= index + lookahead) & (pos > index - window)
        x = x + layer.attn.attend(q, keys, values, mask[None, :])
        x = x + layer.ff(x)
        # later queries (index + 1 on) need keys after index + 1 - window
        drop = max(0, index + 2 - window - start)
        if drop:
            state.keys[l], state.values[l] = keys[:, :, drop:], values[:, :, drop:]
            state.key_start[l] = start + drop
        return x

    def _synthesise_frame(self, state: StreamState) -> None:
        """Latent (from the first time layer's attention on), decoder, masks and iSTFT of the
        oldest pending frame."""
        model, cfg = self.model, self.config
        i = state.next_output_frame
        b = state.inbuf.shape[0]
        x, state.pending_x = state.pending_x[:, :1], state.pending_x[:, 1:]
        q, state.pending_q = state.pending_q[:, :, :1], state.pending_q[:, :, 1:]
        z, state.pending_z = state.pending_z[..., :1], state.pending_z[..., 1:]
        skips = [p[..., :1] for p in state.pending_skips]
        state.pending_skips = [p[..., 1:] for p in state.pending_skips]
        spec, state.pending_spec = state.pending_spec[..., :1], state.pending_spec[..., 1:]

        bands = torch.arange(cfg.num_bands, device=x.device)
        position = torch.tensor([i], device=x.device)
        for l, block in enumerate(model.latent.blocks):
            if l > 0:
                q, k, v = block.time.attn.project(x, position)
                state.keys[l] = torch.cat([state.keys[l], k], dim=2)
                state.values[l] = torch.cat([state.values[l], v], dim=2)
            x = self._attend_cached(l, x, q, i, state)
            x = rearrange(x, "(b n) t d -> (b t) n d", b=b)
            x = block.band(x, bands)
            x = rearrange(x, "(b t) n d -> (b n) t d", b=b)
        z = z + model.latent.merge(rearrange(x, "(b n) t d -> b n t d", b=b))

        n_enc = len(model.encoder)
        for j in reversed(range(len(model.decoder))):
            z, state.conv[n_enc + j] = model.decoder[j].step(z, skips[j], state.conv[n_enc + j])
        stems = model.apply_masks(spec, model.head(z))[..., 0]  # [b, s, c, F+1]
        frames = torch.fft.irfft(stems, n=cfg.n_fft) * self.window
        state.ola = state.ola + frames
        state.ola_weight = state.ola_weight + self.window**2
        state.next_output_frame += 1
        self._emit(state, cfg.hop)

    def _emit(self, state: StreamState, count: int) -> None:
        """Move the first ``count`` (now final) padded positions of the OLA buffer to the output
        queue, dropping the offline centring pad."""
        weight = state.ola_weight[:count]
        # kept samples have an envelope >= 0.5 (see audio.stft); the floor only keeps the
        # positions past the end of the stream, which flush drops, from dividing by ~0
        done = state.ola[..., :count] / weight.clamp_min(ENVELOPE_FLOOR)
        state.ola = torch.cat(
            [state.ola[..., count:], torch.zeros_like(state.ola[..., :count])], -1
        )
        state.ola_weight = torch.cat([state.ola_weight[count:], torch.zeros_like(weight)], -1)
        drop = min(state.to_drop, count)
        state.to_drop -= drop
        state.outq = torch.cat([state.outq, done[..., drop:]], dim=-1)
