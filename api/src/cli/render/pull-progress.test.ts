import { pullProgressBar } from "./pull-progress";

describe("pullProgressBar", () => {
  it("shows bytes, layers and a bar", () => {
    expect(
      pullProgressBar(
        { image: "x", layersDone: 1, layersTotal: 4, bytesDone: 5 * 2 ** 20, bytesTotal: 20 * 2 ** 20 },
        8,
      ),
    ).toBe("[##......] 25% 5Mi/20Mi, 1/4 layers");
  });
  it("copes with an empty image", () => {
    expect(pullProgressBar({ image: "x", layersDone: 0, layersTotal: 0, bytesDone: 0, bytesTotal: 0 }, 4)).toMatch(
      /^\[\.\.\.\.\] 0% /,
    );
  });
});
