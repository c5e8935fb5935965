// Where an image comes from: dropped on a zone, chosen with a file picker, or pasted (Ctrl+V) while the view
// shows. Whatever the file is, it goes to the server as is: the server says when it is not an image.

export function imageInput({ zone, fileInput, isActive, onImage }) {
  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (file) onImage(file, file.name);
    fileInput.value = ""; // choosing the same file again is a new choice
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) onImage(file, file.name);
  });
  document.addEventListener("paste", (event) => {
    if (!isActive()) return;
    const item = [...(event.clipboardData?.items || [])].find((i) => i.kind === "file");
    const file = item?.getAsFile();
    if (file) {
      event.preventDefault();
      onImage(file, file.name && file.name !== "image.png" ? file.name : "pasted.png");
    }
  });
}
