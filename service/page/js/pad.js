// A drawing pad for digits: white strokes on black (how the training digits look), with pointer events so a
// mouse, a pen and a finger all draw. onStroke() is called when a stroke ends.

export class Pad {
  constructor(canvas, { onStroke }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onStroke = onStroke;
    this.drawn = false;
    this.last = null;
    this.clear();
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
  }

  clear() {
    const { ctx, canvas } = this;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    this.drawn = false;
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * this.canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * this.canvas.height) / rect.height,
    };
  }

  down(event) {
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.last = this.point(event);
    this.line(this.last, this.last);
  }

  move(event) {
    if (!this.last) return;
    const p = this.point(event);
    this.line(this.last, p);
    this.last = p;
  }

  up(event) {
    if (!this.last) return;
    this.last = null;
    if (this.canvas.hasPointerCapture(event.pointerId)) this.canvas.releasePointerCapture(event.pointerId);
    this.drawn = true;
    this.onStroke();
  }

  line(a, b) {
    const { ctx, canvas } = this;
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = canvas.width / 12; // a stroke as thick as the digits' strokes relative to their box
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
  }

  toBlob() {
    return new Promise((resolve) => this.canvas.toBlob(resolve, "image/png"));
  }
}
